"""The services in-process: a sqlitedict store, the awork client on a MockTransport, the
catalog read once - what the domain-level tests of deciding, inviting and batches start from."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx

from bot.awork.client import AworkClient
from bot.services.catalog import Catalog
from bot.services.invites import InviteService
from bot.store import SqliteStore
from tests.fakes.awork import API_KEY, FakeAwork

AWORK_URL = "https://api.awork.com/api/v1"


def in_process_service(
    store: SqliteStore,
    approvers: Iterable[str] | Callable[[], Iterable[str]],
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    timeout: httpx.Timeout | None = None,
    **options: Any,
) -> InviteService:
    """An InviteService on `store` whose awork is `handler` (a fresh FakeAwork by default);
    no call waits: retries and lease waits sleep not at all."""
    client_options = {"timeout": timeout} if timeout is not None else {}
    client = AworkClient(
        AWORK_URL,
        API_KEY,
        transport=httpx.MockTransport(handler or FakeAwork().handler),
        retry_sleep=lambda _: None,
        **client_options,
    )
    catalog = Catalog(client, store)
    catalog.refresh()
    if not callable(approvers):
        approvers = frozenset(approvers)
    return InviteService(
        store, client, catalog, approvers, "https://x/{code}", sleep=lambda _: None, **options
    )
