"""The store: one contract (`base.Store`), one engine per file.

`open_store` picks the engine from the settings: PostgreSQL when `INVITE_DATABASE_URL` is
set (any number of replicas share it), else the embedded sqlitedict file at `INVITE_DB_PATH`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.domain.records import Schedule
from bot.store.base import Record, Store, StoreClosed
from bot.store.files import json_table
from bot.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from bot.runtime.config import Settings


def open_store(settings: Settings) -> Store:
    schedule = Schedule(
        settings.invite_remind_after,
        settings.invite_expire_after,
        follow_every=timedelta(seconds=settings.catalog_refresh_seconds),
    )
    store: Store
    if settings.invite_database_url:
        from bot.store.postgres import PostgresStore

        store = PostgresStore(
            settings.invite_database_url.get_secret_value(),
            schedule,
            connect_timeout=settings.invite_database_connect_timeout,
        )
    else:
        store = SqliteStore(settings.invite_db_path, schedule)
    store.retention = timedelta(days=settings.invite_retention_days)
    return store


__all__ = ["Record", "SqliteStore", "Store", "StoreClosed", "json_table", "open_store"]
