"""Wiring: settings -> store, awork client, catalog, service -> a Bolt app with its listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

import handlers
from bot.awork import AworkClient
from bot.catalog import Catalog
from bot.config import Settings
from bot.deps import Deps
from bot.service import InviteService
from bot.store import Store

log = logging.getLogger(__name__)


class _QuietTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that it is
    unused because we hand it a configured client holding that same token. Not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_QuietTokenNotice())


@dataclass
class Bot:
    app: App
    deps: Deps
    store: Store
    awork: AworkClient

    def start_background(self) -> None:
        """Start the picker cache refresher (call in the serving process, after forking)."""
        self.deps.catalog.start()

    def close(self) -> None:
        self.deps.catalog.stop()
        self.awork.close()
        self.store.close()


def slack_client(settings: Settings) -> WebClient:
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def build(
    settings: Settings,
    awork_transport: httpx.BaseTransport | None = None,
    retry_sleep: Callable[[float], None] | None = None,
    token_verification: bool = True,
) -> Bot:
    """Build the whole bot. Tests pass a fake awork transport; nothing starts running here."""
    store = Store(settings.invite_db_path)
    awork_options = {"retry_sleep": retry_sleep} if retry_sleep else {}
    awork = AworkClient(
        settings.awork_api_url,
        settings.awork_api_key.get_secret_value(),
        transport=awork_transport,
        **awork_options,
    )
    catalog = Catalog(awork, store, refresh_seconds=settings.catalog_refresh_seconds)
    service = InviteService(
        store,
        awork,
        catalog,
        approvers=settings.invite_approvers,
        accept_url_template=settings.invite_accept_url,
        workspace_id=settings.awork_workspace_id,
    )
    deps = Deps(settings=settings, service=service, catalog=catalog)
    if not settings.invite_approvers:
        log.warning("INVITE_APPROVERS is empty: nobody can approve requests")
    app = App(
        client=slack_client(settings),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Listeners ack and then do their slow work in these threads; Bolt's default of 5
        # would let a few slow awork calls hold up the acks of everyone else.
        listener_executor=ThreadPoolExecutor(
            max_workers=settings.threads, thread_name_prefix="listener"
        ),
        token_verification_enabled=token_verification,
    )
    handlers.register(app, deps)
    return Bot(app=app, deps=deps, store=store, awork=awork)
