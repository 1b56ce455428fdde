"""Opening PostgreSQL: the pool that every query of the store borrows a connection from."""

from __future__ import annotations

from psycopg_pool import ConnectionPool


def open_pool(url: str, max_connections: int) -> ConnectionPool:
    """The pool, open with one connection."""
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_connections,
        kwargs={"autocommit": True},
        timeout=10.0,
        open=False,
        name="invite-bot",
    )
    try:
        pool.open(wait=True, timeout=10.0)
    except Exception:
        pool.close()
        raise
    return pool
