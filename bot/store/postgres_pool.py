"""Opening PostgreSQL: one direct connection first, so that a database that does not exist, a
refused connection or a wrong password is one line within seconds (not a pool retrying until
its timeout runs out), then the pool that every query of the store borrows a connection from
(through `postgres_conn`).
"""

from __future__ import annotations

import math
import re

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

CONNECT_TIMEOUT = 10.0  # seconds PostgreSQL has to answer when the store opens
WAIT_TIMEOUT = 10.0  # seconds a query waits for a free connection of the pool
# A connection whose peer vanished without a word is given up after about 10 s.
KEEPALIVES = {"keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


class DatabaseUnavailable(ConnectionError):
    """PostgreSQL cannot be reached or refuses the bot; the message says why in one line, and
    never holds the password."""

    def __init__(self, why: str) -> None:
        super().__init__(0, why)

    def __str__(self) -> str:
        return self.strerror


def open_pool(
    url: str,
    max_connections: int,
    connect_timeout: float = CONNECT_TIMEOUT,
    statement_limit: float | None = None,
    lock_limit: float | None = None,
    name: str = "invite-bot",
    probed: bool = False,
    kept: int = 1,
) -> ConnectionPool:
    """A pool, open with one connection and filling up to `kept` in the background, which it
    keeps however long they are idle (more are opened as needed and closed after 10 idle
    minutes): a database that allows fewer connections still opens, and psycopg's pool logs
    the connections it could not make. DatabaseUnavailable when PostgreSQL cannot be had
    (asked first unless `probed`). `statement_limit`: seconds any statement on its
    connections may run, `lock_limit` wait for a lock, at most half of that (set once per
    connection)."""
    if not probed:
        probe(url, connect_timeout)

    def configure(conn: psycopg.Connection) -> None:
        limits = [statement_limit or 0, min(lock_limit or 0, (statement_limit or 0) / 2)]
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('lock_timeout', %s, false)",
            [f"{max(1, int(seconds * 1000))}ms" for seconds in limits],
        )

    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_connections,
        kwargs={
            "autocommit": True,
            # A database that stopped answering is noticed, not waited for forever.
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            **KEEPALIVES,
        },
        # No `check=ConnectionPool.check_connection`: after a failed check the pool waits
        # (1 s, then 2 s, ... - its backoff against busy loops) before it lends another, so
        # after a restart that left N dead connections a query waited N seconds and more.
        # Instead, work whose connection failed has them all checked at once
        # (`ConnectionPool.check`) and goes to a fresh one (postgres_conn.Connections.run).
        timeout=WAIT_TIMEOUT,
        configure=configure if statement_limit is not None else None,
        open=False,
        name=name,
    )
    try:
        pool.open(wait=True, timeout=connect_timeout)
    except Exception:
        pool.close()
        raise
    if kept > 1:
        pool.resize(min_size=kept, max_size=max_connections)  # the rest made in the background
    return pool


def probe(url: str, timeout: float) -> None:
    """Connect once, directly, and disconnect; DatabaseUnavailable saying why when that fails."""
    seconds = max(2, math.ceil(timeout))  # libpq waits whole seconds, at least 2
    try:
        psycopg.connect(url, connect_timeout=seconds).close()
    except psycopg.errors.ConnectionTimeout as exc:
        raise DatabaseUnavailable(f"{place(url)} did not answer within {seconds} s") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(one_line(str(exc))) from exc
    except psycopg.ProgrammingError:
        # libpq quotes the part of the URL it could not read, which may be the password.
        raise DatabaseUnavailable("the database URL is not valid") from None


def place(url: str) -> str:
    """ "PostgreSQL at host:port", as far as the URL says."""
    params = conninfo_to_dict(url)
    return f"PostgreSQL at {params.get('host') or 'localhost'}:{params.get('port') or 5432}"


def one_line(message: str) -> str:
    """psycopg's reason for a failed connection in one line: the last attempt's, without
    libpq's "connection failed:" and "FATAL:" prefixes and hints."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    failed = [line for line in lines if "failed:" in line] or lines or ["no reason given"]
    line = failed[-1]
    start = line.find("connection to server")
    if start >= 0:
        line = line[start:]
    line = re.sub(r"\b(?:FATAL|ERROR):\s*", "", line)
    return " ".join(line.split())
