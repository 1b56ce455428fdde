"""`invite-bot doctor` against the fakes: one line per check, each failure in plain words with
its fix, exit code 0 only when all pass; and awork's 404/405 for POST /invitations at run time."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from bot.cli import doctor
from bot.cli.doctor.awork import AWORK_NAMES
from bot.cli.doctor.slack import slack_checks
from bot.cli.doctor.store import PROBE_KEY, probe_store
from bot.domain.records import Status
from tests.conftest import APPROVERS, make_settings
from tests.fakes.awork import WORKSPACE_ID, Fault
from tests.slack_requests import ADMIN_CHANNEL
from tests.test_scenarios import APPROVER, submit, wait_settled, wait_status

NAMES = [
    "Slack token",
    "Slack scopes",
    "Slack to the bot",
    "Admin channel",
    "Approvers",
    "awork key",
    "awork workspace",
    "awork roles and teams",
    "awork invitations",
    "Acceptance link",
    "Password link",
    "Store",
    "Policy",
]


def run_doctor(tmp_path, slack, awork, **overrides) -> tuple[dict[str, str], int]:
    """The doctor's lines by check name, and its exit code."""
    settings = make_settings(tmp_path, slack.url, **overrides)
    checks = doctor.run(
        settings,
        lambda: slack_checks(settings),
        awork_transport=httpx.MockTransport(awork.handler),
    )
    lines, code = doctor.report(checks, settings)
    assert [check.name for check in checks] == NAMES
    return {check.name: line for check, line in zip(checks, lines, strict=True)}, code


def failing(lines: dict[str, str]) -> list[str]:
    return [name for name, line in lines.items() if not line.startswith("ok  ")]


# --- all well ------------------------------------------------------------------------------------


def test_a_working_installation_passes_every_check(tmp_path, slack, awork):
    """Against working fakes every check says ok, exit 0; nothing is posted or invited."""
    slack.groups["SAPPROVERS"] = ["U1", "U2"]
    approvers = ",".join([*APPROVERS, "SAPPROVERS"])
    lines, code = run_doctor(
        tmp_path, slack, awork, INVITE_APPROVERS=approvers, AWORK_WORKSPACE_ID=WORKSPACE_ID
    )
    assert code == 0 and failing(lines) == []
    assert lines["Slack token"] == "ok  Slack token: valid for workspace Example (bot @invitebot)"
    assert "group SAPPROVERS (2 members)" in lines["Approvers"]
    assert "matches AWORK_WORKSPACE_ID" in lines["awork workspace"]
    assert "400 validation-failed" in lines["awork invitations"]
    assert not slack.of("chat.postMessage") and not slack.of("chat.postEphemeral")
    assert awork.invitations == [] and len(awork.calls("POST", "/invitations")) == 1
    assert json.loads(awork.calls("POST", "/invitations")[0].content) == {}


# --- Slack ---------------------------------------------------------------------------------------


def test_missing_bot_token_fails_and_skips_the_slack_checks(tmp_path, slack, awork):
    """No SLACK_BOT_TOKEN: its line says how to get one; scopes, channel, approvers are skipped."""
    lines, code = run_doctor(tmp_path, slack, awork, SLACK_BOT_TOKEN="")
    assert code == 1
    assert lines["Slack token"].startswith("FAIL  Slack token: SLACK_BOT_TOKEN is not set — fix: ")
    skipped = ["Slack scopes", "Slack to the bot", "Admin channel", "Approvers"]
    for name in skipped:
        assert lines[name].startswith(f"--  {name}: not checked")
    assert failing(lines) == ["Slack token", *skipped]


def test_http_without_a_signing_secret_fails_how_slack_reaches_the_bot(tmp_path, slack, awork):
    """No SLACK_SIGNING_SECRET (and no SLACK_APP_TOKEN): `serve` would not start over HTTP, so
    the doctor does not pass; with it, the line says requests are checked with it."""
    lines, code = run_doctor(tmp_path, slack, awork, SLACK_SIGNING_SECRET="")
    assert code == 1 and "Slack to the bot" in failing(lines)
    assert "SLACK_SIGNING_SECRET is not set" in lines["Slack to the bot"]
    assert "Signing Secret" in lines["Slack to the bot"]
    lines, _ = run_doctor(tmp_path, slack, awork)
    assert lines["Slack to the bot"].startswith("ok  Slack to the bot: over HTTP")


def test_refused_bot_token_says_so_with_the_fix(tmp_path, slack, awork):
    """auth.test invalid_auth: FAIL naming SLACK_BOT_TOKEN and where to copy the token from."""
    slack.errors["auth.test"] = "invalid_auth"
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1
    assert (
        "Slack refused SLACK_BOT_TOKEN (invalid_auth) — fix: copy the Bot User OAuth Token"
        in (lines["Slack token"])
    )


def test_unreachable_slack_is_one_line(tmp_path, slack, awork):
    """Slack not answering: 'could not reach Slack at URL (why)', no retries waited out."""
    lines, code = run_doctor(tmp_path, slack, awork, SLACK_API_URL="http://127.0.0.1:9/api/")
    assert code == 1
    assert "could not reach Slack at http://127.0.0.1:9/api/ (" in lines["Slack token"]
    assert "Connection refused" in lines["Slack token"]


def test_missing_scopes_are_named_with_how_to_add_them(tmp_path, slack, awork):
    """A token granted fewer scopes than manifest.yml asks: FAIL naming each missing one."""
    slack.scopes = [s for s in slack.scopes if s not in ("usergroups:read", "channels:read")]
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and failing(lines) == ["Slack scopes"]
    assert "the token lacks usergroups:read, channels:read — fix: " in lines["Slack scopes"]
    assert "invite-bot manifest" in lines["Slack scopes"]


def test_a_missing_history_scope_says_what_it_costs(tmp_path, slack, awork):
    """Without channels:history a post whose answer was lost cannot be looked for: FAIL says
    it may then show twice."""
    slack.scopes = [s for s in slack.scopes if s != "channels:history"]
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and failing(lines) == ["Slack scopes"]
    assert "the token lacks channels:history (without the *:history scopes" in lines["Slack scopes"]
    assert "may show twice" in lines["Slack scopes"]


def test_extra_scopes_are_fine_and_no_scope_header_fails(tmp_path, slack, awork):
    """More scopes than needed pass; an answer without x-oauth-scopes fails the scope check."""
    slack.scopes = [*slack.scopes, "channels:manage"]
    lines, _ = run_doctor(tmp_path, slack, awork)
    assert lines["Slack scopes"].startswith("ok  ")
    slack.scopes = None
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and "no x-oauth-scopes header" in lines["Slack scopes"]


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (
            lambda slack: slack.refused.update(
                {("conversations.info", ADMIN_CHANNEL): "channel_not_found"}
            ),
            "no channel CADMIN the bot can see (channel_not_found) — fix: set INVITE_ADMIN_CHANNEL",
        ),
        (
            lambda slack: slack.channels.update({ADMIN_CHANNEL: {"is_archived": True}}),
            "#cadmin is archived — fix: unarchive it",
        ),
        (
            lambda slack: slack.channels.update(
                {ADMIN_CHANNEL: {"is_private": True, "is_member": False}}
            ),
            "#cadmin is private and the bot is not in it — fix: add the app to the channel",
        ),
        (
            lambda slack: slack.refused.update(
                {("conversations.info", ADMIN_CHANNEL): "missing_scope"}
            ),
            "missing channels:read",
        ),
    ],
    ids=["not-found", "archived", "private-not-member", "no-scope"],
)
def test_admin_channel_problems(tmp_path, slack, awork, setup, words):
    """conversations.info decides whether the bot can post in INVITE_ADMIN_CHANNEL, no post made."""
    setup(slack)
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and failing(lines) == ["Admin channel"]
    assert words in lines["Admin channel"]
    assert not slack.of("chat.postMessage")


def test_public_channel_without_the_bot_passes_by_chat_write_public(tmp_path, slack, awork):
    """A public channel the bot is not in is fine: chat:write.public lets it post."""
    slack.channels[ADMIN_CHANNEL] = {"is_member": False}
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 0 and "chat:write.public" in lines["Admin channel"]


def test_unset_admin_channel_fails(tmp_path, slack, awork):
    """No INVITE_ADMIN_CHANNEL: FAIL saying where to find the channel id."""
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_ADMIN_CHANNEL="")
    assert code == 1 and "INVITE_ADMIN_CHANNEL is not set — fix: " in lines["Admin channel"]


def test_every_approver_that_does_not_resolve_is_named(tmp_path, slack, awork):
    """Unknown, deactivated and bot users, unknown and empty groups: each named in one line (a
    name instead of an id is refused with the settings)."""
    slack.refused[("users.info", "UGONE")] = "user_not_found"
    slack.people["UOLD"] = {"deleted": True}
    slack.people["UBOT2"] = {"is_bot": True}
    slack.groups["SEMPTY"] = []
    approvers = "UGONE,UOLD,UBOT2,SNONE,SEMPTY,UAPPROVER1"
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_APPROVERS=approvers)
    assert code == 1 and failing(lines) == ["Approvers"]
    line = lines["Approvers"]
    for words in (
        "UGONE does not resolve (user_not_found)",
        "UOLD is deactivated",
        "UBOT2 is a bot",
        "SNONE does not resolve (no_such_subteam)",
        "user group SEMPTY has no members",
        "— fix: list approvers' Slack member ids",
    ):
        assert words in line
    assert "UAPPROVER1" not in line


def test_no_approvers_fails(tmp_path, slack, awork):
    """An empty INVITE_APPROVERS: nobody can approve, said so."""
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_APPROVERS="")
    assert code == 1 and "nobody can approve" in lines["Approvers"]


# --- awork ---------------------------------------------------------------------------------------


def test_no_awork_key_is_the_sandbox_and_fails(tmp_path, slack, awork):
    """Without AWORK_API_KEY the bot invites nobody: FAIL, the other awork checks skipped."""
    lines, code = run_doctor(tmp_path, slack, awork, AWORK_API_KEY="")
    assert code == 1
    assert "sandbox and invites nobody — fix: create an API key" in lines["awork key"]
    assert lines["awork invitations"].startswith("--  ")
    assert not awork.requests


def test_refused_awork_key(tmp_path, slack, awork):
    """GET /users/me 401: the key is named as refused; the awork checks after it are skipped."""
    awork.api_key = "rotated"
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1
    assert "awork refused AWORK_API_KEY (GET /users/me: unauthorized) — fix: " in lines["awork key"]
    assert failing(lines) == ["awork key", *AWORK_NAMES]
    assert not awork.calls("POST", "/invitations")


def test_unreachable_awork(tmp_path, slack, awork):
    """awork not answering: 'could not reach awork at URL'."""
    awork.down = True
    lines, code = run_doctor(tmp_path, slack, awork)
    assert (
        code == 1 and "could not reach awork at https://api.awork.com/api/v1" in lines["awork key"]
    )


def test_workspace_id_that_is_not_the_keys_fails(tmp_path, slack, awork):
    """AWORK_WORKSPACE_ID set to another workspace than the key's: FAIL with both ids."""
    lines, code = run_doctor(tmp_path, slack, awork, AWORK_WORKSPACE_ID="other-workspace")
    assert code == 1 and failing(lines) == ["awork workspace"]
    assert (
        f"AWORK_WORKSPACE_ID is other-workspace, but the key belongs to NCNSTN Creative Agency ({WORKSPACE_ID})"
        in (lines["awork workspace"])
    )
    assert f"set AWORK_WORKSPACE_ID={WORKSPACE_ID}" in lines["awork workspace"]


def test_roles_or_teams_unreadable_fails(tmp_path, slack, awork):
    """GET /roles forbidden, or no roles at all: the roles-and-teams check fails."""
    awork.fail_next.append(Fault(403, {"code": "forbidden", "description": "no"}, path="/roles"))
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and failing(lines) == ["awork roles and teams"]
    assert "forbidden" in lines["awork roles and teams"]
    awork.roles = []
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and "awork lists no roles" in lines["awork roles and teams"]


@pytest.mark.parametrize("status", [404, 405])
def test_invitations_endpoint_gone_is_said_so(tmp_path, slack, awork, status):
    """POST /invitations answered 404 or 405: this awork no longer offers invitations by API."""
    awork.invitations_gone = status
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and failing(lines) == ["awork invitations"]
    line = lines["awork invitations"]
    assert (
        f"awork no longer offers invitations by API (POST /invitations answered {status};" in line
    )
    assert "no longer lists that endpoint" in line and "— fix: " in line


def test_invitations_endpoint_answering_otherwise_fails(tmp_path, slack, awork):
    """An empty invitation accepted (200) or refused with another code is not awork's API."""
    awork.fail_next.append(Fault(200, {}, path="/invitations"))
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1 and "took an empty invitation" in lines["awork invitations"]
    awork.fail_next.append(Fault(400, {"code": "invalid-model"}, path="/invitations"))
    lines, code = run_doctor(tmp_path, slack, awork)
    assert code == 1
    assert "answered 400 invalid-model to an empty invitation" in lines["awork invitations"]


# --- links and store -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "words"),
    [
        (
            "https://x.example/{code}?who={name}",
            "INVITE_ACCEPT_URL has an unknown placeholder {name}",
        ),
        ("https://x.example/{code}}", "INVITE_ACCEPT_URL does not render (Single '}'"),
        ("{code}", "which is not a web address — fix: start INVITE_ACCEPT_URL with https://"),
    ],
    ids=["unknown-placeholder", "stray-brace", "not-a-url"],
)
def test_acceptance_link_template_that_does_not_render(tmp_path, slack, awork, template, words):
    """INVITE_ACCEPT_URL is rendered as the bot renders it; what breaks is said with the fix."""
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_ACCEPT_URL=template)
    assert code == 1 and failing(lines) == ["Acceptance link"]
    assert words in lines["Acceptance link"]


def test_password_link_template_is_checked_too(tmp_path, slack, awork):
    """INVITE_PASSWORD_URL gets the same check."""
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_PASSWORD_URL="https://x/{code}{}")
    assert code == 1 and failing(lines) == ["Password link"]
    assert "INVITE_PASSWORD_URL does not render" in lines["Password link"]


def test_unwritable_store_fails_with_the_path(tmp_path, slack, awork):
    """A store path that cannot be written: 'cannot write the store at PATH: why' and the fix."""
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "invite-bot.sqlite"
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_DB_PATH=str(path))
    assert code == 1 and failing(lines) == ["Store"]
    assert f"cannot write the store at {path}: Not a directory" in lines["Store"]
    assert "— fix: point INVITE_DB_PATH at a file in a writable directory" in lines["Store"]


def test_store_check_leaves_nothing_behind(tmp_path, slack, awork):
    """The store probe writes a key and deletes it again."""
    run_doctor(tmp_path, slack, awork)
    from bot.store import SqliteStore

    store = SqliteStore(str(tmp_path / "invite-bot.sqlite"))
    try:
        assert store.get_meta(PROBE_KEY) is None
    finally:
        store.close()


def test_postgres_store_is_checked_without_its_password(tmp_path, slack, awork, pg_url):
    """On PostgreSQL the store check writes and deletes a key; its line holds no password."""
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_DATABASE_URL=pg_url)
    assert code == 0 and "writable (the PostgreSQL database " in lines["Store"]
    bad = "postgresql://bot:s3cret-pw@127.0.0.1:9/none?connect_timeout=1"
    lines, code = run_doctor(tmp_path, slack, awork, INVITE_DATABASE_URL=bad)
    assert code == 1 and "cannot open the store" in lines["Store"]
    assert "s3cret-pw" not in lines["Store"]


# --- the command ---------------------------------------------------------------------------------


def test_doctor_command_prints_one_line_per_check_and_exits_1_on_a_failure(
    tmp_path, env, slack, awork_server
):
    """`invite-bot doctor` as a process: 12 lines on stdout, nothing on stderr, exit code 0 when
    all pass and 1 when one fails."""
    fake, _ = awork_server
    command = [sys.executable, "-m", "bot", "doctor"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(lines) == len(NAMES) and all(line.startswith("ok  ") for line in lines)
    assert run.stderr == ""
    fake.invitations_gone = 405
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1 and run.stderr == ""
    assert [line.split()[0] for line in run.stdout.splitlines()].count("FAIL") == 1


# --- at run time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 405])
def test_invitations_endpoint_gone_is_explained_on_the_approval_message(
    driver, slack, bot, awork, status
):
    """Approving when awork answers POST /invitations with 404/405: the approval message says
    awork no longer offers invitations by API, not 'could not find'."""
    awork.invitations_gone = status
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    request = wait_status(bot, request_id, Status.FAILED)
    message = json.dumps(wait_settled(slack, request_id, "awork refused")[-1].args["blocks"])
    assert "awork no longer offers invitations by API" in message
    assert f"POST /invitations answered {status}" in message and "could not find" not in message
    assert request.failure.retryable is False


def test_a_workspace_awork_cannot_find_is_still_said_so(slack, bot, awork, driver):
    """A 404 about the workspace (not the endpoint) keeps its own words."""
    awork.workspace = {"id": "another-workspace", "name": "Other"}  # the bot asked once before
    bot.store.set_meta("workspace_id", WORKSPACE_ID)
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.FAILED)
    message = json.dumps(wait_settled(slack, request_id, "awork refused")[-1].args["blocks"])
    assert "could not find the workspace" in message and "no longer offers" not in message


def test_malformed_answers_are_one_failed_line_not_a_traceback(tmp_path, slack, awork):
    """awork or Slack answering something no check expects (a wrong shape, a field missing)
    fails that check in words; the doctor goes on and exits 1."""
    from slack_sdk import WebClient
    from slack_sdk.web import SlackResponse

    def odd_awork(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/roles"):
            return httpx.Response(200, json={"items": []})  # not awork's list of roles
        return awork.handler(request)

    class OddSlack(WebClient):
        def api_call(self, api_method, **kwargs):
            if api_method == "conversations.info":  # "ok" without the channel
                return SlackResponse(
                    client=self,
                    http_verb="POST",
                    api_url=api_method,
                    req_args={},
                    data={"ok": True},
                    headers={},
                    status_code=200,
                )
            return super().api_call(api_method, **kwargs)

    settings = make_settings(tmp_path, slack.url)
    web = OddSlack(token="xoxb-test-bot-token-123456", base_url=slack.url)
    checks = doctor.run(
        settings,
        lambda: slack_checks(settings, web),
        awork_transport=httpx.MockTransport(odd_awork),
    )
    lines, code = doctor.report(checks, settings)
    assert code == 1
    text = "\n".join(lines)
    assert "answered something unexpected" in text and "Traceback" not in text
    assert any(line.startswith("ok  Store") for line in lines)  # later checks still ran


def test_probes_of_two_processes_never_collide(tmp_path):
    """Two stores probing at once (replicas starting together) each read back their own key."""
    import threading

    from bot.store import SqliteStore

    path = str(tmp_path / "shared.sqlite")
    stores = [SqliteStore(path), SqliteStore(path)]
    errors: list[Exception] = []

    def probe(store) -> None:
        for _ in range(50):
            try:
                probe_store(store)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=probe, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
