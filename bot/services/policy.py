"""The policy in force (INVITE_POLICY), and what it says of one ask.

`PolicyFile` reads the file at start (`serve` refuses an invalid one), and again whenever it
changes - looked at, at most every few seconds, by whoever asks for the policy and by every
sweep: a change that does not validate is logged and the last good policy stays in force
(`invitebot_policy_valid` is 0 meanwhile). Role and team names are checked against awork's
catalog once it is known.

`PolicyGate` applies it to one requester and one invitation: who may ask, the domain rules
and routes (bot/domain/policy.py), and the daily limit, counted in the store so that it holds
across replicas. Every decision it takes is counted by rule and outcome.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.domain.clock import utcnow
from bot.domain.policy import Policy, PolicyError, Ruling, parse_policy
from bot.runtime import metrics
from bot.store import Store

log = logging.getLogger(__name__)

NO_POLICY = Policy()
Names = Callable[[], tuple[list[str], list[str]] | None]  # awork's role and team names


def read_policy(path: str, names: tuple[list[str], list[str]] | None = None) -> Policy:
    """The policy in the file at `path`; PolicyError naming each mistake (the file's own,
    then role and team names awork does not have, when `names` are known)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise PolicyError([f"cannot be read ({reason})"]) from None
    policy = parse_policy(text)
    if names is not None:
        unknown = policy.unknown_names(*names)
        if unknown:
            raise PolicyError(unknown)
    return policy


class PolicyFile:
    """The policy in force, kept up to date with its file."""

    def __init__(
        self,
        path: str | None,
        names: Names | None = None,
        check_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.names: Names = names or (lambda: None)
        self.check_every = check_every
        self._clock = clock
        self._policy = NO_POLICY
        self._seen: tuple[float, int] | None = None
        self._checked_at = float("-inf")
        self._named = False  # checked against awork's role and team names
        self._lock = threading.Lock()
        self.problem: str | None = None  # why the file in place is not in force
        metrics.POLICY_VALID.set(1)

    def load(self) -> Policy:
        """Read the file now; PolicyError when it is not valid (nothing changes then)."""
        if self.path is None:
            return self._policy
        stamp, names = self._stamp(), self.names()
        policy = read_policy(self.path, names)
        with self._lock:
            self._policy, self._seen, self.problem = policy, stamp, None
            self._named = names is not None
        metrics.POLICY_VALID.set(1)
        return policy

    @property
    def current(self) -> Policy:
        """The policy in force (read again first if the file changed since last looked at)."""
        if self.path is not None and self._clock() - self._checked_at >= self.check_every:
            self.refresh()
        return self._policy

    def refresh(self) -> bool:
        """Look at the file; read it again if it changed. True when the policy changed."""
        if self.path is None or not self._lock.acquire(blocking=False):
            return False  # another thread is looking: the policy in force serves meanwhile
        try:
            self._checked_at = self._clock()
            stamp = self._stamp()
            # Unchanged - unless awork's names have become known since it was read.
            if stamp == self._seen and (self._named or self.names() is None):
                return False
            self._seen = stamp
            self._named = self.names() is not None
        finally:
            self._lock.release()
        try:
            self.load()
        except PolicyError as exc:
            self.problem = "; ".join(exc.mistakes)
            metrics.POLICY_VALID.set(0)
            log.error(
                "policy %s changed but is not valid; the last good policy stays in force: %s",
                self.path,
                self.problem,
            )
            return False
        log.info("policy %s read again", self.path)
        return True

    def _stamp(self) -> tuple[float, int]:
        try:
            info = os.stat(self.path or "")
        except OSError:
            return (0.0, -1)
        return (info.st_mtime, info.st_size)


@dataclass(frozen=True)
class Limited:
    """How many of those asked for fit under the daily limit, and when it resets."""

    granted: int
    resets_at: datetime


class PolicyGate:
    """The policy applied to one requester and one invitation."""

    def __init__(
        self,
        store: Store,
        policy: PolicyFile | Callable[[], Policy] | None = None,
        resolve: Callable[[Iterable[str]], frozenset[str]] | None = None,
    ) -> None:
        self.store = store
        self.file = policy if isinstance(policy, PolicyFile) else None
        if isinstance(policy, PolicyFile):
            self._policy: Callable[[], Policy] = lambda: policy.current
        else:
            self._policy = policy or (lambda: NO_POLICY)
        # Slack ids -> the users they stand for (a user group S… by its current members).
        self.resolve = resolve or (lambda ids: frozenset(i for i in ids if not i.startswith("S")))

    @property
    def policy(self) -> Policy:
        return self._policy()

    def refresh(self) -> None:
        """Look at the policy file now (the sweep does, every round)."""
        if self.file is not None:
            self.file.refresh()

    def may_ask(self, user_id: str) -> bool:
        """Whether `user_id` may ask at all (`requesters`; absent: everyone). A refusal is
        counted and written to the audit log."""
        allowed = self.policy.may_ask(user_id, self.resolve)
        if not allowed:
            count("requesters", "refused")
            self.refused(user_id, "requesters")
        return allowed

    def refused(self, requester_id: str, rule: str, **detail: object) -> None:
        """An ask the policy refused, in the audit log (`invite-bot audit`) with its rule;
        no request is stored for it."""
        self.store.record("policy_refused", None, requester_id, rule=rule, **detail)

    def judge(
        self,
        email: str,
        role_name: str | None,
        role_is_admin: bool,
        team_names: list[str],
        channel: str | None,
    ) -> Ruling:
        """The domain rules and routes for one invitation (nothing stored)."""
        ruling = self.policy.judge(email, role_name, role_is_admin, team_names, channel)
        count(ruling.rule, ruling.outcome)
        return ruling

    def route_approvers(self) -> frozenset[str]:
        """Everyone who decides on some route (they see their requests in the lists)."""
        ids = [a for route in self.policy.routes for a in route.approvers]
        return self.resolve(ids) if ids else frozenset()

    def counter(self, requester_id: str) -> tuple[str, int] | None:
        """Today's counter of `requester_id` (UTC day) and its limit, for `Store.add` to count
        one in the same transaction; None without a daily limit."""
        limit = self.policy.daily_limit
        return None if limit is None else (f"{utcnow():%Y-%m-%d}|{requester_id}", limit)

    def take(self, requester_id: str, wanted: int) -> Limited:
        """Count `wanted` people (a list) towards today's limit of `requester_id`, as many
        as fit; without a daily limit, all of them."""
        counter = self.counter(requester_id)
        if counter is None or wanted <= 0:
            return Limited(wanted, resets_at())
        granted = self.store.take_quota(counter[0], wanted, counter[1])
        if granted < wanted:
            count("daily_limit", "refused")
        return Limited(granted, resets_at())


def resets_at() -> datetime:
    """When today's daily limits start again: the next midnight, UTC."""
    now = utcnow()
    return datetime(now.year, now.month, now.day, tzinfo=now.tzinfo) + timedelta(days=1)


def count(rule: str, outcome: str) -> None:
    """One decision of the policy, by rule kind (not by domain: the label set stays small)."""
    metrics.POLICY_DECISIONS.labels(_kind(rule), outcome).inc()


def _kind(rule: str) -> str:
    """`blocked_domains: x.com` -> blocked_domains; `routes.design.roles` -> routes.design."""
    head = rule.split(":", 1)[0]
    parts = head.split(".")
    return ".".join(parts[:2]) if parts[0] == "routes" else parts[0]
