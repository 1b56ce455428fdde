"""Issue 16 part 4: every command fails in one line (`invite-bot: what is wrong; what to do` on
stderr, a non-zero exit, never a traceback), says what it does in its --help, counts with
nouns that agree, masks only real secrets and leaves no temporary folder behind. Each test
runs `python -m bot` as a process, as a new user would run `invite-bot`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import SqliteStore


def cli(*args: str, cwd: Path, input: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """`invite-bot ARGS` in `cwd` (no .env there) with only the given configuration."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, **env},
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_failure(run: subprocess.CompletedProcess, *words: str) -> str:
    """The single stderr line of a failed command, checked to hold `words`."""
    assert run.returncode != 0, run.stdout
    assert "Traceback" not in run.stderr + run.stdout
    assert len(run.stderr.splitlines()) == 1, run.stderr
    line = run.stderr.strip()
    assert line.startswith("invite-bot: "), line
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


# --- import and export ---------------------------------------------------------------------------


def test_import_of_a_missing_file_is_one_line_and_creates_no_store(tmp_path):
    """`import` of a file that is not there names it and leaves no store file behind."""
    run = cli("import", "gone.jsonl", cwd=tmp_path)
    one_line_failure(run, "no file gone.jsonl", "invite-bot export")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_import_of_a_file_that_is_not_json_lines_is_one_line_and_creates_no_store(tmp_path):
    """`import` of a text that is not JSON names the line and leaves no store behind."""
    (tmp_path / "notes.txt").write_text('{"type": "meta", "key": "a", "value": 1}\nhello\n')
    run = cli("import", "notes.txt", cwd=tmp_path)
    one_line_failure(run, "notes.txt line 2: not JSON")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"type": "x"}', "not an export item"),
        ("[1, 2]", "not an export item"),
        ('{"type": "record", "doc": {"id": "inv-1"}}', "the record cannot be read"),
        ('{"type": "audit", "doc": {"event": 3}}', "the audit event cannot be read"),
        ('{"type": "meta", "value": 1}', "the state value has no key"),
    ],
    ids=["unknown-type", "not-an-object", "bad-record", "bad-audit", "meta-without-key"],
)
def test_import_of_lines_of_the_wrong_shape_is_one_line_and_imports_nothing(tmp_path, line, words):
    """`import` of JSON that is not an export names the line, and nothing - not even an empty
    store - is written, however many good lines came before it."""
    good = json.dumps({"type": "meta", "key": "kept", "value": 1})
    (tmp_path / "export.jsonl").write_text(f"{good}\n{line}\n")
    run = cli("import", "export.jsonl", cwd=tmp_path)
    one_line_failure(run, f"export.jsonl line 2: {words}", "invite-bot export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl"]


def test_export_into_a_folder_that_does_not_exist_is_one_line(tmp_path):
    """`export` into a missing folder says it cannot write there, and why."""
    SqliteStore(str(tmp_path / "invite-bot.sqlite")).close()
    run = cli("export", "missing/out.jsonl", cwd=tmp_path)
    one_line_failure(run, "cannot write missing/out.jsonl", "No such file or directory")


def test_export_and_import_count_with_nouns_that_agree(tmp_path):
    """One item is "1 item", one state value "1 state value", two records "2 records"."""
    store = SqliteStore(str(tmp_path / "invite-bot.sqlite"))
    store.set_meta("greeting", "hello")
    store.close()
    out = cli("export", "one.jsonl", cwd=tmp_path)
    assert out.returncode == 0 and "exported 1 item from the sqlite store" in out.stderr
    first = cli("import", "one.jsonl", cwd=tmp_path, INVITE_DB_PATH="new.sqlite")
    assert first.returncode == 0, first.stderr
    assert "0 records, 0 archived records, 1 state value, 0 audit events" in first.stdout
    again = cli("import", "one.jsonl", cwd=tmp_path, INVITE_DB_PATH="new.sqlite")
    assert "1 kept" in again.stdout and "0 state values" in again.stdout


# --- ports ---------------------------------------------------------------------------------------


def test_sandbox_on_a_port_in_use_is_one_line(tmp_path, taken_port):
    """`sandbox --port P` where P is taken says so and which option to change."""
    run = cli("sandbox", "--port", str(taken_port), cwd=tmp_path)
    one_line_failure(run, f"cannot listen on 127.0.0.1:{taken_port}", "in use", "--port")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["sandbox", "serve"])
def test_a_port_out_of_range_is_refused_in_one_line(tmp_path, command):
    """`--port 99999` is no port: argparse refuses it in one line, with where to read more."""
    run = cli(command, "--port", "99999", cwd=tmp_path)
    one_line_failure(
        run, "'99999' is not a port number (0 to 65535)", f"invite-bot {command} --help"
    )


def test_serve_on_a_port_in_use_is_one_line(tmp_path, taken_port):
    """`serve --http` on a taken port says so before it asks Slack or opens the store."""
    run = cli(
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        str(taken_port),
        cwd=tmp_path,
        SLACK_BOT_TOKEN="xoxb-unused-here",
        SLACK_SIGNING_SECRET="signing-secret-unused",
        INVITE_ADMIN_CHANNEL="CADMIN",
    )
    one_line_failure(run, f"cannot listen on 127.0.0.1:{taken_port}", "in use")
    assert list(tmp_path.iterdir()) == []


def test_a_database_password_holding_an_at_sign_is_one_line_without_any_of_it(tmp_path):
    """An unencoded @ in INVITE_DATABASE_URL's password would make the rest of it the host,
    printed by the driver: refused in one line naming %40, with no part of the password."""
    for url in (
        "postgresql://bot:Pg@Pass789secret@127.0.0.1:5432/db",
        "postgresql://bot:Pg?Pass789@secret@127.0.0.1:5432/db",  # a ? before it, too
    ):
        run = cli("doctor", cwd=tmp_path, INVITE_DATABASE_URL=url)  # any command: the settings
        line = one_line_failure(run, "INVITE_DATABASE_URL", "%40")
        assert "Pass789" not in run.stderr + run.stdout and "Value error" not in line


# --- the shell -----------------------------------------------------------------------------------


def test_shell_with_a_db_in_a_missing_folder_is_one_line(tmp_path):
    """`shell --db missing/x.sqlite` names the folder that is not there."""
    run = cli("shell", "--db", "missing/x.sqlite", cwd=tmp_path, input="quit\n")
    one_line_failure(run, "there is no folder missing", "create it")


@pytest.mark.parametrize("ending", ["quit\n", "", "unknown words\n"], ids=["quit", "eof", "error"])
def test_the_shell_leaves_no_folder_in_the_temp_directory(tmp_path, ending):
    """Whether it is left by `quit`, the end of input (Ctrl-D) or after a mistake, the shell
    removes the folder it kept its store in."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    run = cli("shell", cwd=tmp_path, input=f"/invite grace@example.com\n{ending}", TMPDIR=str(temp))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert "message 1 · #approvals" in run.stdout
    assert list(temp.iterdir()) == []


def test_the_shell_keeps_its_own_store_though_a_deployed_database_is_named(tmp_path):
    """With INVITE_DATABASE_URL set (the deployed bot's .env or environment), the shell still
    writes into its own file (`--db`), never into that database."""
    deployed = "postgresql://invitebot:secret@127.0.0.1:1/production"
    lines = "/invite grace@example.com\nquit\n"
    run = cli("shell", "--db", "s.sqlite", cwd=tmp_path, input=lines, INVITE_DATABASE_URL=deployed)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert "message 1 · #approvals" in run.stdout
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    try:
        assert [r.details.email for r in store.requests()] == ["grace@example.com"]
    finally:
        store.close()


def test_the_shell_is_not_stopped_by_settings_it_replaces_but_names_one_it_takes(tmp_path):
    """A .env's @olga in INVITE_APPROVERS (the shell's own people decide) does not keep the
    shell from starting; a PORT it takes as it is, out of range, is one line."""
    lines = "/invite grace@example.com\nquit\n"
    run = cli("shell", cwd=tmp_path, input=lines, INVITE_APPROVERS="@olga", LOG_LEVEL="warn")
    assert run.returncode == 0 and "message 1 · #approvals" in run.stdout, run.stderr
    one_line_failure(cli("shell", cwd=tmp_path, input="quit\n", PORT="99999"), "PORT", "65535")


def test_the_shell_shows_the_answer_a_deny_form_becomes(tmp_path):
    """A deny submitted after another approver approved: the shell prints the answer the form
    became (not "form sent")."""
    lines = "/invite grace@example.com\nas @olga\ndeny 1\nas @sam\napprove 1\n"
    lines += "as @olga\n1 too late\nsubmit\n"
    run = cli("shell", cwd=tmp_path, input=lines)
    assert run.returncode == 0, run.stderr
    answer = run.stdout.rsplit("@olga> submit", 1)[1]
    assert "Nothing changed: the request for grace@example.com was already approved by @sam" in (
        answer
    )
    assert "form sent" not in answer


def test_the_shell_says_how_many_seats_its_sandbox_has_and_takes_seats(tmp_path):
    """`--seats 1` is a workspace with one seat, its owner's: the greeting says so and an
    approved invitation finds no free seat."""
    lines = "/invite grace@example.com role:Member\nas @olga\napprove 1\n"
    run = cli("shell", "--seats", "1", cwd=tmp_path, input=lines)
    assert run.returncode == 0, run.stderr
    assert "Its workspace has 1 seat, its owner's included" in run.stdout
    assert "awork has no free seats left" in run.stdout
    default = cli("shell", cwd=tmp_path, input="quit\n")
    assert "Its workspace has 25 seats," in default.stdout


def test_shell_seats_must_be_a_positive_number(tmp_path):
    """`--seats 0` is refused in one line."""
    run = cli("shell", "--seats", "0", cwd=tmp_path)
    one_line_failure(run, "'0' is not a whole number of at least 1")


# --- help, the manifest, masking -----------------------------------------------------------------


def test_every_subcommands_help_says_what_it_does(tmp_path):
    """`invite-bot COMMAND --help` starts with a sentence saying what the command does."""
    import argparse

    from bot.cli.parser import build_parser

    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in commands.choices.items():
        sentence = parser.description or ""
        assert sentence[:1].isupper() and sentence.endswith("."), name
        run = cli(name, "--help", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert " ".join(sentence.split()) in " ".join(run.stdout.split()), name


def test_manifest_refuses_a_url_in_socket_mode(tmp_path):
    """`manifest --url … --socket` is a contradiction (Socket Mode has no request URLs)."""
    run = cli("manifest", "--url", "https://bot.example.com", "--socket", cwd=tmp_path)
    one_line_failure(run, "--url or --socket, not both")
    assert run.stdout == ""


def test_a_short_secret_does_not_mask_ordinary_words(tmp_path):
    """SLACK_SIGNING_SECRET=s masks nothing: "workspace" stays whole in the doctor's lines."""
    run = cli("doctor", cwd=tmp_path, SLACK_SIGNING_SECRET="s")
    assert "install the app to the workspace" in run.stdout
    assert "[redacted]" not in run.stdout
