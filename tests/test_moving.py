"""`invite-bot migrate`, `export` and `import`: moving a live store from sqlitedict into
PostgreSQL and back without losing a request, an audit entry or a lease."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest, Status
from bot.store import SqliteStore
from tests.serving import SCRIPT, free_port

QUICKLY = 3.0  # seconds from start to exit for a store that cannot be opened (the pool took 10)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))
    }
    return subprocess.run(
        [str(SCRIPT), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_export_import_moves_a_store_into_postgres_and_back(tmp_path, pg_url):
    """A sqlitedict store with a pending request, one under a lease, an archived one and audit
    entries is exported, imported into PostgreSQL (migrated on the way) and exported back:
    nothing is lost and the lease is the same."""
    source = SqliteStore(str(tmp_path / "old.sqlite"))
    waiting = source.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.com")))
    working = source.add(InviteRequest(requester_id="U1", details=InviteDetails(email="b@x.com")))
    source.transition(working.id, {Status.PENDING}, Status.INVITING, claim=("host:1:x", 300))
    source.record("submitted", waiting.id, "U1")
    source.record("approved", working.id, "U2")
    held = source.get(working.id).claim_until
    source.close()
    dump = tmp_path / "store.jsonl"

    out = cli("export", str(dump), INVITE_DB_PATH=str(tmp_path / "old.sqlite"))
    assert out.returncode == 0, out.stderr
    assert "exported 4 items" in out.stderr
    migrated = cli("migrate", INVITE_DATABASE_URL=pg_url)
    assert migrated.returncode == 0 and "postgresql store at schema version" in migrated.stdout
    loaded = cli("import", str(dump), INVITE_DATABASE_URL=pg_url)
    assert loaded.returncode == 0, loaded.stderr
    assert "2 record" in loaded.stdout and "2 audit" in loaded.stdout
    again = cli("import", str(dump), INVITE_DATABASE_URL=pg_url)
    assert "4 kept" in again.stdout  # importing twice adds nothing

    from bot.store.postgres import PostgresStore

    target = PostgresStore(pg_url)
    try:
        assert target.get(waiting.id).status is Status.PENDING
        moved = target.get(working.id)
        assert moved.claimed_by == "host:1:x" and moved.claim_until == held
        assert target.open_addresses(["a@x.com"]) == {"a@x.com": waiting.id}
        assert [e.event for e in target.audit()] == ["submitted", "approved"]
    finally:
        target.close()
    audit = cli("audit", "--json", INVITE_DATABASE_URL=pg_url)
    assert [json.loads(line)["event"] for line in audit.stdout.splitlines()] == [
        "submitted",
        "approved",
    ]
    back = tmp_path / "back.jsonl"
    assert cli("export", str(back), INVITE_DATABASE_URL=pg_url).returncode == 0
    assert sorted(back.read_text().splitlines()) == sorted(dump.read_text().splitlines())


def test_a_database_that_does_not_answer_is_one_clear_line(tmp_path):
    """migrate against an unreachable database: exit 2, one line, no traceback."""
    out = cli(
        "migrate", INVITE_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
    )
    assert out.returncode == 2 and "cannot open the store" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_database_that_does_not_exist_is_one_line_within_seconds(env, pg_base_url):
    """`serve` and `migrate` naming a database that is not there: exit 2 within seconds, with
    one line that says so, instead of the pool's warnings and a timeout."""
    name = f"missing_{secrets.token_hex(4)}"
    url = urlunsplit(urlsplit(pg_base_url)._replace(path=f"/{name}"))
    commands = [["serve", "--http", "--port", str(free_port())], ["migrate"]]
    started = time.monotonic()
    runs = [
        subprocess.Popen(
            [str(SCRIPT), *command],
            env={**env, "INVITE_DATABASE_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert time.monotonic() - started <= QUICKLY
    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 2 and stdout == ""
        assert stderr.splitlines() == [
            f'invite-bot: cannot open the store: connection to server at "{urlsplit(url).hostname}",'
            f' port {urlsplit(url).port or 5432} failed: database "{name}" does not exist'
        ]


def test_a_database_that_does_not_answer_is_given_up_on_after_the_connect_timeout():
    """A server that takes the connection and never answers, INVITE_DATABASE_CONNECT_TIMEOUT=1:
    the store gives up after libpq's shortest wait (2 s), not the default 10 s, in one line."""
    from bot.store import open_store
    from bot.store.postgres_pool import DatabaseUnavailable
    from tests.conftest import IsolatedSettings

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = IsolatedSettings(
            INVITE_DATABASE_URL=f"postgresql://bot@127.0.0.1:{port}/x",
            INVITE_DATABASE_CONNECT_TIMEOUT="1",
        )
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as caught:
            open_store(settings)
        assert time.monotonic() - started <= QUICKLY
    assert str(caught.value) == f"PostgreSQL at 127.0.0.1:{port} did not answer within 2 s"


def test_store_settings_are_checked(tmp_path):
    """A database URL that is not postgresql:// is refused with the variable's name."""
    out = cli("migrate", INVITE_DATABASE_URL="mysql://x/y")
    assert out.returncode == 2 and "INVITE_DATABASE_URL" in out.stderr


def test_archived_requests_travel_too(tmp_path, pg_url):
    """An archived request exported from sqlitedict is archived in PostgreSQL: readable by id,
    not in lists."""
    source = SqliteStore(str(tmp_path / "s.sqlite"))
    old = source.add(InviteRequest(requester_id="U1", details=InviteDetails(email="o@x.com")))
    source.transition(old.id, {Status.PENDING}, Status.DENIED)
    source.update(old.id, approval_message={"channel": "C", "ts": "1"}, shown_status="denied")
    source.update(old.id, waiting_told=True, outcome_told=True)
    assert source.archive(source.now() + timedelta(seconds=1)) == 1
    items = list(source.export())
    source.close()
    from bot.store.postgres import PostgresStore

    target = PostgresStore(pg_url)
    try:
        assert target.import_items(items)["archived"] == 1
        assert target.get(old.id).status is Status.DENIED and target.listed("U1") == []
    finally:
        target.close()


def test_the_database_password_never_reaches_the_terminal_or_the_log():
    """The URL and its password (as written and decoded) are masked like every secret."""
    import logging

    from bot.runtime.logs import MASK, RedactSecrets, secret_values
    from tests.conftest import IsolatedSettings

    settings = IsolatedSettings(INVITE_DATABASE_URL="postgresql://bot:p%40ss-word-9@db:5432/x")
    secrets = secret_values(settings)
    assert "p%40ss-word-9" in secrets and "p@ss-word-9" in secrets
    record = logging.LogRecord("x", logging.ERROR, "", 0, "failed: %s", ("p@ss-word-9",), None)
    RedactSecrets(secrets).filter(record)
    assert record.getMessage() == f"failed: {MASK}"
    out = cli("migrate", INVITE_DATABASE_URL="postgresql://bot:p%zz-secret-9@127.0.0.1:9/x")
    assert out.returncode == 2 and "zz-secret-9" not in out.stderr + out.stdout
