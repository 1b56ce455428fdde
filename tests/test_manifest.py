"""manifest.yml: what an admin pastes into Slack must match what the bot serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.runtime.web import EVENTS_PATH

MANIFEST = yaml.safe_load((Path(__file__).parents[1] / "manifest.yml").read_text())


def test_slash_command_and_interactivity_point_at_slack_events():
    """/invite, interactivity and options load all go to POST /slack/events."""
    [command] = MANIFEST["features"]["slash_commands"]
    assert command["command"] == "/invite" and command["url"].endswith(EVENTS_PATH)
    interactivity = MANIFEST["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["request_url"].endswith(EVENTS_PATH)
    assert interactivity["message_menu_options_url"].endswith(EVENTS_PATH)


def test_bot_scopes_cover_every_web_api_method_used():
    """The scopes include what chat.*, conversations.open and users.lookupByEmail need."""
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {
        "commands",
        "chat:write",
        "chat:write.public",
        "im:write",
        "users:read",
        "users:read.email",
        "files:read",  # the bulk form's file_input
    } <= scopes


def test_socket_mode_is_available():
    """The manifest says how to switch to Socket Mode (the key exists, off by default)."""
    assert MANIFEST["settings"]["socket_mode_enabled"] is False
    assert MANIFEST["features"]["bot_user"]["display_name"]


def test_app_home_and_its_event_are_enabled():
    """The Home tab is on and app_home_opened arrives at /slack/events."""
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    events = MANIFEST["settings"]["event_subscriptions"]
    assert events["request_url"].endswith(EVENTS_PATH) and "app_home_opened" in events["bot_events"]


def test_bot_scopes_let_it_look_for_a_post_whose_answer_was_lost():
    """conversations.history and .replies need a *:history scope in each kind of conversation
    the bot posts to: a public or private approvers' channel, and DMs."""
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {"channels:history", "groups:history", "im:history"} <= scopes
