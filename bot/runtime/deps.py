"""What the Slack listeners need, handed to each `register(app, deps)`."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import SingleTeamAuthorization
from slack_sdk.web import SlackResponse

from bot.runtime import allocator, logs, metrics
from bot.runtime.config import Settings
from bot.services.batches import BatchService
from bot.services.catalog import Catalog
from bot.services.invites import InviteService
from bot.store import budget

log = logging.getLogger(__name__)


class AckGate:
    """Acks first: follow-up work waits while Slack requests are being answered and until
    `settle` seconds have passed without one - at most `patience` seconds, well inside a
    trigger_id's 3 s - so that in a burst the interpreter lock goes to the acks rather than to
    the modals and posts of those already acked."""

    def __init__(self, patience: float = 0.25, settle: float = 0.02) -> None:
        self.patience = patience
        self.settle = settle
        self._answering = 0
        self._last = 0.0  # when the last answer was done (monotonic)
        self._quiet = threading.Condition()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        with self._quiet:
            self._answering += 1
        try:
            yield
        finally:
            with self._quiet:
                self._answering -= 1
                self._last = time.monotonic()
                if not self._answering:
                    self._quiet.notify_all()

    def wait_quiet(self) -> None:
        deadline = time.monotonic() + self.patience
        while True:
            now = time.monotonic()
            calm = self._last + self.settle  # read without the lock: a stale value costs a wait
            if now >= deadline or (not self._answering and now >= calm):
                return
            if self._answering:
                with self._quiet:
                    self._quiet.wait_for(lambda: not self._answering, timeout=deadline - now)
            else:
                time.sleep(min(calm, deadline) - now)


ACKS = AckGate()  # the HTTP server says when it is answering


@functools.cache  # looked up once per pool, not at every hand-off on an ack's path
def _waiting(pool_name: str) -> Any:
    """The pending-work gauge of a pool: this process's, all bots in it."""
    return metrics.WORK_PENDING.labels(pool_name)


class AnsweringApp(App):
    """Bolt's App, answering every Slack request (HTTP, Socket Mode, the shell) under the ack's
    time budget for store calls (bot/store/budget.py): whatever the database does, the answer
    leaves within Slack's 3 s; a store that missed it is answered "busy" (handlers/errors.py).
    Every answer is masked as the logs and the Web API calls are (`secrets`): an ack's body -
    a command's answer, a form's errors - may quote awork's error text, which may echo the key.
    Given `auth_test_result` (the answer of an auth.test already asked with this token), its
    authorization keeps that answer rather than asking Slack the same again as it is made."""

    def __init__(
        self,
        *args: Any,
        secrets: list[str] | None = None,
        auth_test_result: SlackResponse | None = None,
        **kwargs: Any,
    ) -> None:
        if auth_test_result is not None:
            kwargs["token_verification_enabled"] = False
        super().__init__(*args, **kwargs)
        self.secrets = logs.maskable(secrets or ())
        if auth_test_result is not None:
            # Bolt's App takes no answer of its own; its single-workspace authorization keeps
            # the one it asks for, and without one it would ask at the first request.
            for middleware in self._middleware_list:
                if isinstance(middleware, SingleTeamAuthorization):
                    middleware.auth_test_result = auth_test_result

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        # A context of its own per request: what its middleware sets (the person's language,
        # handlers/language.py) lasts for its listener and the work handed on, then ends.
        return contextvars.copy_context().run(self._dispatch, req)

    def _dispatch(self, req: BoltRequest) -> BoltResponse:
        with budget.ack_budget():
            response = super().dispatch(req)
        if self.secrets and isinstance(response.body, str):
            response.body = logs.masked(response.body, self.secrets)
        return response


MODAL_DEADLINE = 2.5  # seconds a modal may wait to be opened: a trigger_id lives 3


class Deliveries(Protocol):
    """What the listeners and the sweeper ask of the Courier (handlers/delivery/courier.py),
    which brings Slack up to date with requests and batches and says things to one person."""

    def sync(
        self,
        request_id: str,
        wait: float = 10.0,
        lease: Any = None,
        stored: Any = None,
        close_with: Any = None,
    ) -> Any: ...
    def lease_here(self) -> Any: ...
    def sync_batch(self, batch_id: str, wait: float = 10.0) -> Any: ...
    def run_batch(self, batch_id: str, claim_id: str | None) -> Any: ...
    def sweep(self, force: bool = False) -> int: ...
    def publish_home(self, user_id: str, remember: bool = False) -> None: ...
    def slack_user(self, address: str) -> str | None: ...
    def tell(
        self, user_id: str, channel: str | None, text: str, blocks: list | None = None
    ) -> Any: ...
    def replace(self, channel: str, ts: str, text: str, blocks: list | None = None) -> bool: ...
    def remember_step_token(self, execution_id: str, token: str | None) -> None: ...
    def complete_step(
        self, execution_id: str, outputs: dict | None = None, error: str | None = None
    ) -> bool: ...
    def complete_later(
        self, execution_id: str, outputs: dict | None, error: str | None
    ) -> None: ...
    def finish_steps(self) -> int: ...


class Pending:
    """Counts the follow-up work handed to the pools and not yet done, so that one can wait
    until all of it - and whatever it handed on in turn - has run. `on_idle` is what the work
    thread that finished the last of it does next: the memory a burst freed goes back to the
    system (bot/runtime/allocator.py)."""

    def __init__(self, on_idle: Callable[[], object] | None = allocator.give_back) -> None:
        self._count = 0
        self._idle = threading.Condition()
        self.on_idle = on_idle

    def add(self) -> None:
        with self._idle:
            self._count += 1

    def done(self) -> bool:
        """One piece less; whether none is left."""
        with self._idle:
            self._count -= 1
            if self._count:
                return False
            self._idle.notify_all()
            return True

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or running; False if `timeout` seconds passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._count, timeout)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    service: InviteService
    catalog: Catalog
    courier: Deliveries
    batches: BatchService
    followups: Executor
    modals: Executor
    modal_client: Any  # a slack_sdk WebClient with a short timeout, for views.open
    # Each person's language (handlers/delivery/languages.py); `channel` is INVITE_LANGUAGE.
    languages: Any = None
    pending: Pending = field(default_factory=Pending)

    def open_modal(self, work: Callable[..., Any], *args: Any) -> None:
        """Like `later`, for opening a modal: its own small pool, so that a trigger_id (3 s)
        never waits behind slow awork calls; a modal still queued when the trigger has died
        is not opened at all."""
        self._submit(
            self.modals,
            work,
            args,
            expires=MODAL_DEADLINE,
            pending=self.pending,
            pool_name="modals",
        )

    def later(self, work: Callable[..., Any], *args: Any) -> None:
        """Run `work` after the ack, in the follow-up pool.

        Listeners ack inline (Bolt's `process_before_response`), so Slack has its answer as
        soon as the listener returns; whatever is slow - opening a modal, posting, calling
        awork - goes here. The context (the request id in the log) goes along."""
        self._submit(self.followups, work, args, pending=self.pending, pool_name="work")

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once no follow-up work or modal is queued or running (what a listener handed
        on has been done); False if `timeout` seconds passed first."""
        return self.pending.wait_idle(timeout)

    @staticmethod
    def _submit(
        pool: Executor,
        work: Callable[..., Any],
        args: tuple,
        expires: float | None = None,
        pending: Pending | None = None,
        pool_name: str = "work",
    ) -> None:
        context = contextvars.copy_context()
        queued = time.monotonic()
        pending = pending or Pending()
        waiting = _waiting(pool_name)

        def run() -> None:
            try:
                ACKS.wait_quiet()
                if expires is not None and time.monotonic() - queued > expires:
                    log.warning("a modal waited too long to open (trigger expired); skipped")
                    return
                # Without the ack's time budget, which the copied context carries along.
                context.run(budget.call_lifted, work, *args)
            except Exception as exc:  # logged for the operator; Slack already has its ack
                log.error("follow-up work failed: %s", type(exc).__name__, exc_info=exc)
            finally:
                waiting.dec()
                if pending.done() and pending.on_idle is not None:
                    pending.on_idle()  # on this work thread, never on an ack's

        pending.add()
        waiting.inc()
        try:
            pool.submit(run)
        except RuntimeError:  # shutting down: the Slack side is redone by the next start's sweep
            pending.done()
            waiting.dec()
            log.warning("shutting down: follow-up work after an ack is left to the next start")
