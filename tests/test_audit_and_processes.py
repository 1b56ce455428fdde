"""The audit trail, the `invite-bot audit` command, and compare-and-set across processes."""

from __future__ import annotations

import json
import logging
import multiprocessing
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest, Status
from bot.runtime import logs
from bot.store import SqliteStore as Store
from tests.conftest import APPROVERS, BOT_TOKEN, SIGNING_SECRET
from tests.fakes.awork import API_KEY
from tests.store_race import race
from tests.test_scenarios import settle, submit, wait_status

APPROVER = APPROVERS[0]


def full_flow(driver, slack, bot, awork) -> tuple[str, str]:
    slack.members["ada@example.com"] = "UADA"
    approved = submit(driver, slack)
    driver.click("approve_invite", approved, APPROVER)
    wait_status(bot, approved, Status.INVITED)
    dm = next(m for m in settle(bot, approved).messages if m.kind == "invitee_dm")
    driver.click("accept_invite", approved, "UADA", channel=dm.channel, ts=dm.ts)
    wait_status(bot, approved, Status.JOINED)
    settle(bot, approved)
    denied = submit(driver, slack, {"email": "bob@example.com"})
    driver.submit_deny(denied, "not this quarter", APPROVERS[1])
    wait_status(bot, denied, Status.DENIED)
    settle(bot, denied)
    return approved, denied


def test_every_step_is_in_the_audit_log(driver, slack, bot, awork):
    """Requests, decisions (who, reason), awork results and posts are appended in order."""
    approved, denied = full_flow(driver, slack, bot, awork)
    events = bot.store.audit()

    def of(rid: str) -> list[tuple[str, str | None]]:
        return [
            (e.event, e.actor)
            for e in events
            if e.request_id == rid and e.event != "message_posted"
        ]

    assert of(approved) == [
        ("submitted", "UREQ"),
        ("approved", APPROVER),
        ("invited", None),
        ("joined", "UADA"),
    ]
    assert of(denied) == [("submitted", "UREQ"), ("denied", APPROVERS[1])]
    assert next(e for e in events if e.event == "denied").detail["reason"] == "not this quarter"
    posts = [
        e.detail["kind"] for e in events if e.event == "message_posted" and e.request_id == approved
    ]
    assert posts == ["approval", "waiting_notice", "invitee_dm", "outcome_notice", "outcome_notice"]
    code = awork.invitations[0]["invitationCode"].rstrip("=")
    assert code not in json.dumps([e.model_dump(mode="json") for e in events])


def test_audit_command_prints_text_and_json(driver, slack, bot, awork, settings):
    """`invite-bot audit` reads the store; --json gives one object per line; --since filters."""
    full_flow(driver, slack, bot, awork)
    env = {"INVITE_DB_PATH": settings.invite_db_path, "PATH": "/usr/bin:/bin"}
    text = subprocess.run(
        [sys.executable, "-m", "bot", "audit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "submitted" in text and "denied" in text and f"by {APPROVER}" in text
    lines = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert {e["event"] for e in events} >= {
        "submitted",
        "approved",
        "invited",
        "denied",
        "message_posted",
    }
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--since", tomorrow],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert later.stdout == ""
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--since", "last tuesday"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "ISO" in bad.stderr


def test_logs_of_a_full_flow_hold_no_secret(driver, slack, bot, awork, caplog):
    """At DEBUG, nothing logged in a full flow contains a code, token, secret or API key."""
    logs.quiet_libraries(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    full_flow(driver, slack, bot, awork)
    text = caplog.text
    assert "invitation created" in text
    code, reset = awork.invitations[0]["invitationCode"], awork.invitations[0]["passwordResetCode"]
    # Codes end in '=' padding, which links carry as %3D: search for the bare code too.
    for secret in (code, code.rstrip("="), reset.rstrip("="), BOT_TOKEN, SIGNING_SECRET, API_KEY):
        assert secret not in text


def test_redaction_masks_configured_secrets():
    """A log record that somehow holds a token is masked before it is written."""
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token %s here", ("xoxb-123456789",), None
    )
    logs.RedactSecrets(["xoxb-123456789"]).filter(record)
    assert record.getMessage() == "token [redacted] here"


def test_compare_and_set_holds_across_processes(tmp_path):
    """Four processes sharing one store file race the same transitions of 20 requests from a
    common start: each request is won once, by one of them."""
    path = str(tmp_path / "shared.sqlite")
    store = Store(path)
    ids = [
        store.add(
            InviteRequest(requester_id="U1", details=InviteDetails(email=f"a{i}@example.com"))
        ).id
        for i in range(20)
    ]
    store.close()
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(4), ctx.Queue()
    processes = [ctx.Process(target=race, args=(path, ids, i, start, results)) for i in range(4)]
    for p in processes:
        p.start()
    won = [results.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(60)
    assert [each for each in won if isinstance(each, str)] == []  # no process failed
    assert sorted(request_id for each in won for request_id in each) == sorted(ids)
    reopened = Store(path)
    assert {reopened.get(i).status for i in ids} == {Status.INVITING}
    reopened.close()
