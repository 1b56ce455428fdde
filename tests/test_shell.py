"""Issue 5 item 2: `invite-bot shell` runs the real Bolt app in a terminal, driven through stdin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "invite-bot"


def run(lines: str, tmp_path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))}
    result = subprocess.run(
        [str(SCRIPT), *args],
        input=lines,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,  # no .env here
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def messages(output: str) -> list[str]:
    """Each printed message (or update), header and body."""
    return re.split(r"\n(?=── )", output)


def test_form_approval_and_accept_in_the_terminal(tmp_path):
    """Fill the form by number, approve as an approver, accept as the invitee (a Slack member)."""
    output = run(
        """\
as @grace
as @ada
/invite
1 grace@example.com
2 Grace
7 project
8 design, eng
submit
as @olga
approve 1
as @grace
accept 3
quit
""",
        tmp_path,
        "shell",
    )
    assert "You are @ada" in output and "sandbox — no real invitation" in output
    assert "7. Role — type a name" in output
    assert "── message 1 · #approvals ──" in output
    assert '[Approve: approve 1]  [Deny: deny 1 "reason"]' in output
    assert "*Role:* Project Manager" in output and "*Teams:* Design, Engineering" in output
    assert "── message 3 · DM to @grace ──" in output and "[Accept invitation: accept 3]" in output
    assert "── message 3 updated · DM to @grace ──" in output
    assert "You joined Sandbox Agency on awork" in output
    assert "@grace joined" in output  # the approval message, brought up to date
    for block in messages(output):  # every message and update the bot sent is labelled
        if block.startswith("── message"):
            assert "sandbox — no real invitation" in block, block


def test_field_errors_deny_with_a_reason_and_bulk_inline(tmp_path):
    """A bad email is a numbered field error; `deny N "reason"` fills the modal; a list is a batch."""
    output = run(
        """\
/invite
1 not-an-address
submit
1 kim@example.com
submit
as @sam
deny 1 "Use the agency account"
as @ada
/invite a@x.com b@x.com role:member --no-email
as @olga
approve 4
/invite pending
""",
        tmp_path,
        "shell",
    )
    assert "✗ field 1 (email): That doesn't look like an email address." in output
    assert "Denied by @sam*: Use the agency account" in output
    assert "@sam denied your request to invite kim@example.com: Use the agency account" in output
    assert "[Approve all 2: approve 4]" in output
    assert "2 invited" in output
    assert "Acceptance links for request" in output and "── message" in output
    assert "Waiting for a decision: 0" in output


def test_plain_invite_bot_without_slack_tokens_is_the_shell(tmp_path):
    """`invite-bot` alone, with no Slack configuration, starts the shell; `help` explains it."""
    output = run("help\nas @nina\nusers\n", tmp_path)
    assert "invite-bot shell (sandbox — no real invitation)" in output
    assert "approve N | deny N" in output
    assert "@nina  UNINA  nina@example.com  member" in output
    assert "@olga  UOLGA  olga@example.com  approver" in output


def test_unknown_commands_and_missing_messages_are_answered(tmp_path):
    """Typos get a hint and the shell keeps going."""
    output = run("frobnicate\napprove 9\n/invite help\n", tmp_path, "shell")
    assert "unknown command 'frobnicate'" in output
    assert "there is no message 9" in output
    assert "/invite bulk" in output
