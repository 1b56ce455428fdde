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
    assert "  Role: Project Manager" in output and "  Teams: Design, Engineering" in output
    assert "── message 3 · DM to @grace ──" in output and "[Accept invitation: accept 3]" in output
    assert "── message 3 updated · DM to @grace ──" in output
    assert "You joined Sandbox Agency on awork" in output
    assert "@grace joined" in output  # the approval message, brought up to date
    for block in messages(output):  # every message and update the bot sent is labelled, once
        if block.startswith("── message"):
            assert block.count("sandbox — no real invitation") == 1, block


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
    assert "✗ field 1 (Email): That doesn't look like an email address." in output
    assert "Denied by @sam: Use the agency account" in output
    assert "@sam denied your request to invite kim@example.com: Use the agency account" in output
    assert "You asked in #general." in output  # later news by DM names the channel, readably
    assert "[Approve all 2: approve 4]" in output
    assert "2 invited" in output
    assert "Acceptance links for request" in output and "── message" in output
    assert "Waiting for a decision: 0" in output


def test_plain_invite_bot_without_slack_tokens_is_the_shell(tmp_path):
    """`invite-bot` alone, with no Slack token, starts the shell - also when a .env holds what
    the shell replaces, not yet filled in right (a channel name); `help` explains it."""
    (tmp_path / ".env").write_text("INVITE_ADMIN_CHANNEL=#approvals\n")
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


# --- issue 12: rows of buttons, forms that answer, multi-line answers, the transcript ---------


def test_each_row_of_the_pending_list_has_its_own_buttons(tmp_path):
    """`/invite pending` numbers each row's buttons (`approve 5.2`); a bare `approve 5` on a
    list asks which; `approve 5.2` approves exactly the second request."""
    output = run(
        """\
/invite a@x.com role:member
/invite b@x.com role:member
as @olga
/invite pending
approve 5
approve 5.2
/invite pending
help
""",
        tmp_path,
        "shell",
    )
    assert '[Approve: approve 5.1]  [Deny: deny 5.1 "reason"]' in output
    assert '[Approve: approve 5.2]  [Deny: deny 5.2 "reason"]' in output
    assert "message 5 has several approve buttons: `approve 5.1` or `approve 5.2`" in output
    updates = [m for m in messages(output) if m.startswith("── message 3 updated")]
    assert updates and "Approved by @olga" in updates[-1] and "b@x.com" in updates[-1]
    assert not [m for m in messages(output) if m.startswith("── message 1 updated")]
    last_list = messages(output.split("@olga> /invite pending")[-1])[1]
    assert "Waiting for a decision: 1" in last_list and "a@x.com" in last_list
    assert "b@x.com" not in last_list
    assert "`approve 5.2`" in output  # the help says how


def test_a_form_says_what_it_holds_and_lists_the_choices(tmp_path):
    """Setting a field echoes its value (`7 a` -> `Role: Admin (admin)`); an unknown choice
    lists the valid ones, fetched through the options listener; `N` alone lists them too;
    `show` prints the form as filled so far."""
    output = run(
        """\
/invite
1 grace@example.com
7 a
7 zzz
8
8 des, eng
8 nope
9 yes
show
help
""",
        tmp_path,
        "shell",
    )
    assert "@ada> 1 grace@example.com\n  Email: grace@example.com\n" in output
    assert "@ada> 7 a\n  Role: Admin (admin)\n" in output
    assert (
        "“zzz” is not a choice for Role; choose one of Admin (admin), Guest, Member, "
        "Project Manager" in output
    )
    assert "Teams: one of Design, Engineering, Marketing" in output
    assert "Teams: Design, Engineering\n" in output
    assert (
        "“nope” is not a choice for Teams; choose one of Design, Engineering, Marketing" in output
    )
    assert "Skip awork's welcome email: yes (Don't send it)" in output
    shown = output.split("@ada> show\n", 1)[1]
    assert "  1. Email *: grace@example.com\n  2. First name: —\n" in shown
    assert "  7. Role: Admin (admin)\n  8. Teams: Design, Engineering\n" in shown
    assert "`show` prints the form so far" in shown


def test_a_multi_line_bulk_list_with_spaces_between_addresses(tmp_path):
    """`1` alone starts the bulk list, an empty line ends it; `a@x.com b@y.com` on one line is
    two people, as inline; the lines are echoed after `... `, as a transcript."""
    output = run(
        """\
/invite bulk
1
a@x.com b@y.com
c@z.com, Cee

3 member
submit
as @olga
approve 1
""",
        tmp_path,
        "shell",
    )
    assert "1. People, one per line — several lines: `1` alone, the lines, an empty line" in output
    assert "@ada> 1\n... a@x.com b@y.com\n... c@z.com, Cee\n" in output
    assert "  People, one per line:\n    a@x.com b@y.com\n    c@z.com, Cee\n" in output
    assert "form sent" in output
    assert "[Approve all 3: approve 1]" in output
    assert "3 invited" in output


def test_a_piped_session_reads_as_a_transcript(tmp_path):
    """From a pipe, nothing is printed before a line is read: each command appears after its
    prompt, blank lines and comments are skipped, the end of input leaves with exit code 0."""
    output = run("# a comment\n\nusers\nas @olga\nusers", tmp_path, "shell")
    lines = output.splitlines()
    assert lines[0].startswith("invite-bot shell (sandbox")
    assert lines[1] == "@ada> users"
    assert "@olga> users" in lines
    assert "comment" not in output and "@ada> \n" not in output
