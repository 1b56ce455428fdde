"""`invite-bot doctor`'s store check, also `serve`'s and the store commands' one-line reasons:
the store opens (its schema created or upgraded) and takes a write; a key is written, read back
and deleted, so nothing is left behind."""

from __future__ import annotations

import secrets
import sqlite3
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bot.cli.doctor.check import Check
from bot.runtime.config import Settings

PROBE_KEY = "doctor_probe"  # + a random suffix: replicas starting together never share one


def store_place(settings: Settings) -> str:
    """Where the store is, without a password: the file, or the database's host and name."""
    if not settings.invite_database_url:
        return settings.invite_db_path
    try:
        parts = urlsplit(settings.invite_database_url.get_secret_value())
        port = f":{parts.port}" if parts.port else ""
        return f"the PostgreSQL database {parts.hostname or 'localhost'}{port}{parts.path}"
    except ValueError:
        return "the PostgreSQL database of INVITE_DATABASE_URL"


def store_problem(settings: Settings, exc: Exception) -> str:
    """One line for a store that cannot be opened or written: `cannot write the store at PATH:
    why` for a file, `cannot open the store: ...` for a database; secrets masked."""
    from bot.runtime.logs import masked, secret_values

    if isinstance(exc, OSError) and exc.strerror:
        why = exc.strerror
        if exc.filename and str(exc.filename) != settings.invite_db_path:
            why += f" ({exc.filename})"
    elif isinstance(exc, sqlite3.Error):
        why = str(exc)
    else:
        why = f"{type(exc).__name__}: {exc}"
    why = (why.splitlines() or [""])[0]
    if settings.invite_database_url:
        text = f"cannot open the store: {why}"
    else:
        text = f"cannot write the store at {settings.invite_db_path}: {why}"
    return masked(text, secret_values(settings))


def probe_store(store) -> None:
    """Write a key into the store, read it back and delete it: raises when it is not writable."""
    key = f"{PROBE_KEY}:{secrets.token_hex(8)}"
    stamp = datetime.now(UTC).isoformat()
    store.set_meta(key, stamp)
    try:
        if store.get_meta(key) != stamp:
            raise OSError(0, "a value written could not be read back")
    finally:
        store.delete_meta(key)


def store_writable(settings: Settings) -> str | None:
    """None when the store opens (its schema created or upgraded, as at the bot's start) and
    takes a write; else one line saying why (`serve` checks this before it starts too)."""
    from bot.store import open_store

    try:
        store = open_store(settings)
    except Exception as exc:
        return store_problem(settings, exc)
    try:
        probe_store(store)
    except Exception as exc:
        return store_problem(settings, exc)
    finally:
        store.close()
    return None


def store_check(settings: Settings) -> Check:
    """The store opens and takes a write (`store_writable`)."""
    problem = store_writable(settings)
    if problem:
        return _store_failed(settings, problem)
    place = store_place(settings)
    kind = "PostgreSQL" if settings.invite_database_url else "sqlitedict file"
    where = place if settings.invite_database_url else f"{kind} {place}"
    return Check.passed("Store", f"writable ({where})")


def _store_failed(settings: Settings, problem: str) -> Check:
    if settings.invite_database_url:
        fix = "check INVITE_DATABASE_URL and that this user may create tables and write in that database"
    else:
        fix = "point INVITE_DB_PATH at a file in a writable directory on a persistent volume (in Docker leave it unset: the image keeps the store in /data)"
    return Check.fail("Store", problem, fix)
