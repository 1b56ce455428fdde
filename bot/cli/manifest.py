"""The Slack app manifest, shipped inside the package (bot/cli/manifest.yml, a copy of the repository's
manifest.yml), and `invite-bot manifest`: that manifest with the request URLs, the command name
and Socket Mode filled in, ready to paste into Slack.

The file is edited as text, not loaded and dumped, so its comments (why each scope) stay in
what the admin pastes; tests parse the result back as YAML.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

# Next to this module (package data; `bot` is a namespace package, so not importlib.resources).
MANIFEST_FILE = Path(__file__).with_name("manifest.yml")
PLACEHOLDER = "https://invite-bot.example.com"
EVENTS_PATH = "/slack/events"  # bot.web.EVENTS_PATH (a test keeps them equal)
# The names the bot answers to (handlers/commands.py COMMAND; a test keeps them equal).
COMMANDS = ("/invite", "/awork-invite")
# `/invite` as a word: not inside a URL or a longer name like `/invite-x` or `/awork-invite`.
COMMAND_WORD = re.compile(r"(?<![\w/.-])/invite(?![\w-])")
URL_KEYS = re.compile(r"^(\s*)(url|request_url|message_menu_options_url):\s")


def shipped() -> str:
    """The manifest as installed with the package."""
    return MANIFEST_FILE.read_text(encoding="utf-8")


def bot_scopes(text: str | None = None) -> list[str]:
    """The bot scopes the manifest asks for (oauth_config.scopes.bot), read from its lines:
    the package does not depend on a YAML parser for this one list."""
    scopes: list[str] = []
    inside = False
    for line in (text or shipped()).splitlines():
        content = line.split("#", 1)[0].rstrip()
        if not content:
            continue
        if content.strip() == "bot:" and len(content) - len(content.lstrip()) == 4:
            inside = True
            continue
        if inside:
            item = re.fullmatch(r"\s+- ([\w:.]+)", content)
            if item is None:
                break
            scopes.append(item[1])
    return scopes


class ManifestError(ValueError):
    """A `--url` or `--command` the manifest cannot be made with (said in one line)."""


def events_url(url: str) -> str:
    """`https://bot.example.com` (or with /slack/events already) -> .../slack/events."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ManifestError(
            f"--url must be the bot's public https:// address, not {url!r}"
        ) from None
    if parts.scheme != "https" or not parts.netloc or re.search(r"\s", url.strip()):
        raise ManifestError(f"--url must be the bot's public https:// address, not {url!r}")
    if parts.query or parts.fragment:
        raise ManifestError("--url takes no ?query or #fragment")
    base = url.strip().rstrip("/")
    return base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH


def render(url: str | None, command: str = "/invite", socket: bool = False) -> str:
    """manifest.yml for one installation: every request URL `<url>/slack/events` (or, with
    `socket`, Socket Mode on and no request URLs), the slash command named `command`."""
    if command not in COMMANDS:
        raise ManifestError(
            f"--command must be one of {', '.join(COMMANDS)} (the names the bot answers to)"
        )
    if not socket and not url:
        raise ManifestError("give --url (the bot's public https:// address) or --socket")
    if socket and url:
        raise ManifestError(
            "give --url or --socket, not both: in Socket Mode Slack sends everything over the socket, to no URL"
        )
    target = json.dumps(events_url(url)) if url and not socket else None
    lines = shipped().splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)  # the file's own instructions ("replace ... with ...") are done here
    how = "Socket Mode" if socket else f"HTTP at {events_url(url or '')}"
    out = [
        "# The Slack app for invite-bot (made by `invite-bot manifest`): paste it at",
        "# https://api.slack.com/apps -> Create New App -> From a manifest.",
        f"# Command {command}, requests by {how}.",
    ]
    if socket:
        out.append("# Then create an app-level token with connections:write for SLACK_APP_TOKEN.")
    for line in lines:
        line = COMMAND_WORD.sub(command, line)
        key = URL_KEYS.match(line)
        if key:
            if PLACEHOLDER not in line:
                raise ManifestError(f"manifest.yml has an unexpected request URL: {line.strip()}")
            if target is None:
                continue  # Socket Mode: Slack sends everything over the socket
            line = f"{key[1]}{key[2]}: {target}"
        elif re.match(r"^\s*socket_mode_enabled:", line):
            line = line.split(":", 1)[0] + (": true" if socket else ": false")
        elif re.match(r"^\s*- command:", line):
            line = line.split(":", 1)[0] + f": {command}"
        out.append(line)
    return "\n".join(out) + "\n"
