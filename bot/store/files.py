"""Private files: the store's file, its lock and the sandbox's, readable by their owner only,
and sqlitedict tables that keep JSON (never pickle)."""

from __future__ import annotations

import contextlib
import json
import os

from sqlitedict import SqliteDict

PRIVATE = 0o600  # the store holds invitation and password-reset codes: its owner's eyes only
JOURNALS = ("-wal", "-shm", "-journal")


def private_file(path: str) -> None:
    """Create `path` readable and writable by its owner only, whatever the umask; a file that
    exists already is tightened to that."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, PRIVATE)
    try:
        if os.fstat(fd).st_mode & 0o777 != PRIVATE:
            os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)


def json_table(
    path: str,
    name: str,
    autocommit: bool = True,
    journal_mode: str = "DELETE",
    table: type[SqliteDict] = SqliteDict,
) -> SqliteDict:
    """A sqlitedict table that stores JSON, never pickle: a store file must not be able to run
    code when it is read. The file is private (0600); SQLite gives its journal files the
    database file's mode, and journals left by an older version are tightened here. `table`:
    sqlitedict's own, or the store's, which runs its statements in the calling thread
    (bot/store/sqlite_conn.py)."""
    private_file(path)
    for suffix in JOURNALS:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path + suffix, PRIVATE)
    return table(
        path,
        tablename=name,
        autocommit=autocommit,
        encode=json.dumps,
        decode=json.loads,
        outer_stack=False,
        journal_mode=journal_mode,
    )
