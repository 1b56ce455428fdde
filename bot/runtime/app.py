"""Wiring: settings -> store, awork client, catalog, service -> a Bolt app with its listeners."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

import handlers
from bot.awork.client import AworkClient
from bot.awork.errors import AworkError
from bot.awork.ratelimit import RateLimiter
from bot.runtime import logs, metrics
from bot.runtime.command import refresh_command
from bot.runtime.config import Settings
from bot.runtime.deps import AnsweringApp, Deps
from bot.runtime.outbound import proxy_for, tls_for
from bot.runtime.readiness import StoreReadiness
from bot.runtime.signing import SignedOnly
from bot.runtime.slack_clients import SLACK_RETRY_COUNT, modal_client, slack_client
from bot.services.batches import BatchService
from bot.services.catalog import Catalog
from bot.services.invites import InviteService
from bot.services.leases import new_instance_id
from bot.services.policy import PolicyFile, PolicyGate
from bot.store import Store, StoreClosed, open_store
from handlers.delivery.approvers import ApproverDirectory
from handlers.delivery.courier import Courier
from handlers.delivery.languages import Languages

if TYPE_CHECKING:
    from bot.awork.sandbox import Sandbox

log = logging.getLogger(__name__)
NOT_CHECKED = "Slack auth not checked yet"


class _QuietTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that it is
    unused because we hand it a configured client holding that same token. Not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_QuietTokenNotice())


class _TagRequest(Middleware):
    """`logs.tag_request` as Bolt's class middleware, handed the request as it is: a function
    middleware has its arguments looked up by name on every request."""

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        return logs.tag_request(req, next)


def started() -> None:
    """A serving process has started (HTTP or Socket Mode): everything built so far lives as
    long as the process, so it goes out of the collector's sight - a full collection is then
    short instead of tens of milliseconds in the middle of an ack - and the collector, off
    while `invite-bot serve` started (bot/cli/main.py), runs again. Start-up must close what
    it opens itself: the collector does not come by to close it."""
    gc.collect()  # what start-up left over, once (~8 ms), rather than frozen for good
    gc.freeze()
    gc.enable()


@dataclass
class Bot:
    app: App
    deps: Deps
    store: Store
    awork: AworkClient
    executor: ThreadPoolExecutor
    modals: ThreadPoolExecutor
    directory: ApproverDirectory
    sweep_seconds: float = 30.0
    sandbox: Sandbox | None = None

    def __post_init__(self) -> None:
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._slack_auth: str | None = NOT_CHECKED
        self._slack_checked = 0.0
        self._gates: list[threading.Barrier] = []  # warm-up's, broken by a stop
        self._store_ready = StoreReadiness(lambda: self.store.get_meta("ready"))

    def not_ready(self) -> str | None:
        """Why this instance should not get traffic (GET /readyz), or None: the store must
        answer (within a second) and Slack must have accepted the token."""
        return self._store_ready.problem() or self._slack_auth

    def slack_accepted(self) -> None:
        """Slack has just accepted the token (auth.test as the app was made, or just before by
        `serve`): ready on that, without asking again at the first sweep; asked again in 5 min."""
        self._slack_auth, self._slack_checked = None, time.monotonic()

    def check_slack_auth(self) -> None:
        """auth.test: at the first sweep, then every sweep until it passes, then every 5 min."""
        if self._slack_auth is None and time.monotonic() - self._slack_checked < 300:
            return
        self._slack_checked = time.monotonic()
        before = self._slack_auth
        try:
            self.app.client.auth_test()
            self._slack_auth = None
        except SlackApiError as exc:
            self._slack_auth = f"Slack refused the token ({exc.response.get('error')})"
        except Exception as exc:
            self._slack_auth = f"Slack unreachable ({type(exc).__name__})"
        # Said once as it changes, not at every sweep: /readyz alone would leave it unexplained.
        if self._slack_auth is not None and self._slack_auth != before:
            log.error("not ready: %s; /readyz answers 503 until it passes", self._slack_auth)
        elif self._slack_auth is None and before not in (None, NOT_CHECKED):
            log.info("ready again: Slack accepts the token")

    def warm_up(self) -> None:
        """Start the follow-up pools' threads now rather than one by one in the first burst.
        A stop meanwhile ends it at once: `shutdown` breaks its gates, and a pool shut down
        takes no more threads' work."""
        for pool in {id(self.executor): self.executor, id(self.modals): self.modals}.values():
            workers = getattr(pool, "_max_workers", 0)
            gate = threading.Barrier(workers + 1)
            self._gates.append(gate)
            try:
                if self._stopping.is_set():  # after `shutdown` broke the gates it knew
                    raise RuntimeError("stopping")
                for _ in range(workers):
                    pool.submit(gate.wait, 5)
            except RuntimeError:  # the pool was shut down meanwhile
                gate.abort()
                return
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait(5)

    def start_background(self) -> None:
        """Start the picker cache and the sweeper (call in the serving process, after forking).

        The sweeper settles invitations a crash interrupted and redoes Slack posts that failed:
        at once, then every `sweep_seconds`."""
        self.deps.catalog.start()
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="sweeper", daemon=True)
            self._sweeper.start()

    def _sweep_loop(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                self.check_slack_auth()  # first: readiness does not wait for awork
                refresh_command(self.store)  # the texts naming it do not read it themselves
                if first:  # the workspace, once, before any click needs it
                    self._workspace_known()
                self.deps.service.policy.refresh()  # INVITE_POLICY changed? (last good stays)
                self.directory.refresh(force=first)
                self.deps.courier.sweep(force=first)
                metrics.OUTBOX_DEPTH.set(self.store.count_due())
                first = False
                # Once an hour across all replicas: decided requests past retention to the archive.
                if self.store.claim_period("archive", 3600, self.deps.service.instance_id):
                    moved = self.store.archive_settled()
                    if moved:
                        log.info("archived %d settled requests", moved)
            except StoreClosed:
                return
            except Exception as exc:  # keep sweeping; the next round may succeed
                log.error("sweep failed: %s", type(exc).__name__, exc_info=exc)
            # Sooner when an unsure invitation's next look is due (Work.alarm).
            self.deps.service.work.alarm.wait(self.sweep_seconds)

    def _workspace_known(self) -> None:
        """Ask awork for the workspace id at start (when not configured), so the first
        invitation - or a bulk run's first rate-limit window - does not spend a call on it."""
        try:
            self.deps.service.workspace_id()
        except AworkError as exc:
            log.warning("workspace id not known yet (%s); asked again when needed", exc.code)

    def shutdown(self, timeout: float = 25.0) -> bool:
        """Graceful stop: let in-flight invitations and their Slack posts finish (bounded),
        then close the store. Whatever is cut off is recovered at the next start."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        for gate in list(self._gates):  # warm-up's threads wait no more: the pools drain now
            gate.abort()
        self.deps.service.work.alarm.ring()  # the sweeper stops waiting
        self.deps.catalog.stop()
        self.deps.batches.stop()  # no further member starts; the run is resumed at the next start
        finished = self.deps.service.wait_idle(timeout)
        if self.modals is not self.executor:  # the shell hands in one executor for both
            self.modals.shutdown(wait=False, cancel_futures=True)  # a modal now is too late

        drain = threading.Thread(target=self.executor.shutdown, kwargs={"wait": True}, daemon=True)
        drain.start()
        drain.join(max(0.0, deadline - time.monotonic()))
        finished = finished and not drain.is_alive()
        if self._sweeper is not None:
            self._sweeper.join(max(0.0, deadline - time.monotonic()))
        self.close()
        log.info(
            "stopped %s",
            "cleanly" if finished else "with work still running; it is recovered at the next start",
        )
        return finished

    def close(self) -> None:
        self._stopping.set()
        self.deps.service.work.alarm.ring()
        self.deps.catalog.stop()
        self.awork.close()
        self.store.close()
        if self.sandbox is not None:
            self.sandbox.close()


# Opening a modal is one quick Slack call that must happen within its trigger_id's 3 seconds:
# a small pool of its own, never queued behind awork calls, and few threads to share the
# interpreter lock with the acks of a burst.
MODAL_THREADS = 8


def build(
    settings: Settings,
    awork_transport: httpx.BaseTransport | None = None,
    retry_sleep: Callable[[float], None] | None = None,
    token_verification: bool = True,
    slack: WebClient | None = None,
    executor: ThreadPoolExecutor | None = None,
    slack_auth: SlackResponse | None = None,
) -> Bot:
    """Build the whole bot. Tests pass a fake awork transport, the shell its terminal Slack
    (`slack`) and an executor it can watch; `serve` the answer of the auth.test it checked the
    token with (`slack_auth`), which Bolt then keeps instead of asking Slack again; nothing
    starts running here."""
    store = open_store(settings)
    client = slack or slack_client(settings)
    # INVITE_POLICY: read now (PolicyError when it is not valid), again when it changes.
    policy = PolicyFile(settings.invite_policy)
    policy.load()
    # Approver ids and user groups (whose members the sweep reads from Slack), and the
    # policy's groups.
    directory = ApproverDirectory(
        client, settings.invite_approvers, named_elsewhere=lambda: policy.current.group_ids()
    )
    awork_options = {"retry_sleep": retry_sleep} if retry_sleep else {}
    sandbox, awork_url = None, settings.awork_api_url
    if settings.sandbox and awork_transport is None:
        # Imported only here: with AWORK_API_KEY set, serving never needs the sandbox.
        from bot.awork.sandbox import API_URL, Sandbox

        log.warning(
            "AWORK_API_KEY is not set: the awork sandbox answers; no real invitation is sent"
        )
        sandbox = Sandbox(sandbox_path(settings.invite_db_path))
        awork_transport = httpx.MockTransport(sandbox.handle)
        awork_url = API_URL  # the logs name the sandbox
    # With several replicas on PostgreSQL, awork's per-workspace limit is counted there.
    limits = (settings.awork_rate_per_second, settings.awork_rate_per_minute)
    limiter = store.rate_limiter(*limits) or RateLimiter(*limits)
    awork = AworkClient(
        awork_url,
        settings.awork_api_key.get_secret_value() or "sandbox",
        transport=awork_transport,
        limiter=limiter,
        timeout=httpx.Timeout(settings.awork_timeout, connect=min(5.0, settings.awork_timeout)),
        # The system's CA store, as for Slack, and the environment's proxy (bot/runtime/outbound.py).
        verify=functools.partial(tls_for, awork_url, httpx=True),
        proxy=proxy_for(awork_url),
        **awork_options,
    )
    instance_id = new_instance_id()  # this process, as lease holder and periodic-job owner
    catalog = Catalog(
        awork, store, refresh_seconds=settings.catalog_refresh_seconds, owner=instance_id
    )
    policy.names = catalog.names  # once known, a role or team awork lacks is a mistake
    service = InviteService(
        store,
        awork,
        catalog,
        approvers=directory.current,
        accept_url_template=settings.invite_accept_url,
        workspace_id=settings.awork_workspace_id,
        password_url_template=settings.invite_password_url,
        skip_email_for_slack_members=settings.invite_skip_email_for_slack_members,
        lease_margin=settings.invite_lease_margin,
        instance_id=instance_id,
        settle_seconds=settings.invite_settle_seconds,
        policy=PolicyGate(store, policy, directory.resolve),
        **({"sleep": retry_sleep} if retry_sleep else {}),
    )

    if not settings.invite_approvers:
        log.warning("INVITE_APPROVERS is empty: nobody can approve requests")
    # Work after the ack; a shell's own executor (which it watches) takes the modals too.
    modals = executor or ThreadPoolExecutor(max_workers=MODAL_THREADS, thread_name_prefix="modal")
    executor = executor or ThreadPoolExecutor(
        max_workers=settings.threads, thread_name_prefix="listener"
    )
    app = AnsweringApp(
        # Named, or Bolt inspects the whole call stack to name itself (0.1 s at start).
        name="invite-bot",
        logger=logs.bolt_logger(),
        client=client,
        secrets=logs.secret_values(settings),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Bolt's own signature check logs a refused request's whole body: ours logs its size.
        request_verification_enabled=False,
        before_authorize=SignedOnly(settings.slack_signing_secret.get_secret_value()),
        # Listeners ack inline, in the thread that serves the request, and return at once:
        # Slack has its answer without Bolt's ack polling (a 10 ms sleep per request). What
        # is slow runs after the ack in `executor` (Deps.later), modals in `modals`.
        process_before_response=True,
        listener_executor=executor,
        token_verification_enabled=token_verification,
        auth_test_result=slack_auth,
    )
    batches = BatchService(service, concurrency=settings.bulk_concurrency)
    # A person's locale is asked of Slack once a day, with the bot's own client (its timeout
    # and slack_sdk's retries, a 429 included): an ack waits a quarter of a second at most for
    # a first lookup (handlers/language.py), and a DM waits for its reader's.
    languages = Languages(app.client, channel=settings.invite_language)
    courier = Courier(
        app.client,
        service,
        settings.invite_admin_channel,
        remind_after=settings.invite_remind_after,
        expire_after=settings.invite_expire_after,
        batches=batches,
        slack_timeout=settings.slack_timeout,
        slack_retries=SLACK_RETRY_COUNT,
        languages=languages,
    )
    deps = Deps(
        settings=settings,
        service=service,
        catalog=catalog,
        courier=courier,
        batches=batches,
        followups=executor,
        modals=modals,
        modal_client=slack or modal_client(settings),
        languages=languages,
    )
    app.use(_TagRequest())  # Socket Mode requests get a request id too
    handlers.register(app, deps)
    bot = Bot(
        app=app,
        deps=deps,
        store=store,
        awork=awork,
        executor=executor,
        modals=modals,
        directory=directory,
        sweep_seconds=settings.sweep_seconds,
        sandbox=sandbox,
    )
    if token_verification:  # auth.test was asked (by Bolt, or before: `slack_auth`), and passed
        bot.slack_accepted()
    return bot


def sandbox_path(db_path: str) -> str:
    """The sandbox's own file next to the store: invite-bot.sqlite -> invite-bot.sandbox.sqlite."""
    path = Path(db_path)
    return str(path.with_name(f"{path.stem}.sandbox{path.suffix or '.sqlite'}"))
