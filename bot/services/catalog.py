"""awork roles and teams for the pickers, served from memory and refreshed in the background.

Slack gives an options request 3 seconds, and awork may be slow or down: the pickers never
wait on awork. The last good lists are also kept in the store, so a restart while awork is down
still has something to offer. With several replicas on one store, one of them fetches from
awork per period (`Store.claim_period`) and the others take the lists from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from bot.awork.client import AworkClient
from bot.awork.errors import AworkError
from bot.domain.awork_models import Role, Team
from bot.domain.clock import utcnow
from bot.store import Store, StoreClosed

log = logging.getLogger(__name__)

Named = TypeVar("Named", Role, Team)

MAX_OPTIONS = 100  # Slack shows at most 100 options per request.


class Catalog:
    def __init__(
        self,
        awork: AworkClient,
        store: Store,
        refresh_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        owner: str = "",
    ) -> None:
        self._owner = owner
        self._awork = awork
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshed_at: float | None = None
        self.roles: list[Role] = []
        self.teams: list[Team] = []
        # Lower-case emails of the workspace's awork users, to spare admins duplicate requests.
        self.member_emails: frozenset[str] = frozenset()
        # ...and of those who accepted their invitation, as of `members_seen_at` (UTC).
        self.accepted_emails: frozenset[str] = frozenset()
        self.members_seen_at: datetime | None = None
        self._loaded_stamp: str | None = None
        self._load()

    def _load(self) -> None:
        """Take the lists as last stored (by this process or another replica)."""
        store = self._store
        self.roles = [Role.model_validate(r) for r in store.get_meta("roles", [])]
        self.teams = [Team.model_validate(t) for t in store.get_meta("teams", [])]
        self.member_emails = frozenset(store.get_meta("member_emails", []))
        self.accepted_emails = frozenset(store.get_meta("accepted_emails", []))
        seen = store.get_meta("members_seen_at")
        self.members_seen_at = datetime.fromisoformat(seen) if seen else None
        self._loaded_stamp = store.get_meta("catalog_at")

    # -- reading (never touches awork) -----------------------------------------------------

    def find_roles(self, query: str = "") -> list[Role]:
        self._nudge_if_stale()
        return _matching(self.roles, query)

    def find_teams(self, query: str = "") -> list[Team]:
        self._nudge_if_stale()
        return _matching(self.teams, query)

    def role(self, role_id: str | None) -> Role | None:
        return next((role for role in self.roles if role.id == role_id), None)

    def names(self) -> tuple[list[str], list[str]] | None:
        """awork's role and team names, once known (None before the first refresh)."""
        if not self.roles and not self.teams:
            return None
        return [role.name for role in self.roles], [team.name for team in self.teams]

    def team_names(self, team_ids: Sequence[str]) -> list[str]:
        names = {team.id: team.name for team in self.teams}
        return [names.get(team_id, team_id) for team_id in team_ids]

    # -- refreshing ------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch both lists from awork now. Keeps the old lists when awork fails."""
        try:
            roles = sorted(self._awork.roles(), key=lambda r: r.name.lower())
            teams = sorted(self._awork.teams(), key=lambda t: t.name.lower())
        except AworkError as exc:
            log.warning("could not refresh roles and teams from awork: %s", exc.code)
            return False
        with self._lock:
            self.roles, self.teams = roles, teams
            self.refreshed_at = self._clock()
        self._store.set_meta("roles", [r.model_dump(mode="json", by_alias=True) for r in roles])
        self._store.set_meta("teams", [t.model_dump(mode="json", by_alias=True) for t in teams])
        log.info("picker cache refreshed: %d roles, %d teams", len(roles), len(teams))
        return self._refresh_members()

    def _refresh_members(self) -> bool:
        started = utcnow()
        try:
            users = list(self._awork.users())
        except AworkError as exc:
            log.warning("could not refresh awork's members: %s", exc.code)
            return False
        accepted = [u for u in users if u.status is not None and u.status.invitation_accepted]
        self.member_emails = frozenset(email for user in users for email in user.emails)
        self.accepted_emails = frozenset(email for user in accepted for email in user.emails)
        self.members_seen_at = started
        self._store.set_meta("member_emails", sorted(self.member_emails))
        self._store.set_meta("accepted_emails", sorted(self.accepted_emails))
        self._store.set_meta("members_seen_at", started.isoformat())
        self._loaded_stamp = self._store.now().isoformat()
        self._store.set_meta("catalog_at", self._loaded_stamp)
        return True

    def refresh_shared(self) -> bool:
        """Once per period across every replica sharing the store: whoever claims the period
        asks awork; the others take what it stored. False when nothing is fresh yet."""
        stamp = self._store.get_meta("catalog_at")
        age = (self._store.now() - datetime.fromisoformat(stamp)).total_seconds() if stamp else None
        if age is None or age >= self._refresh_seconds:
            # Claimed for a short while only: a failed fetch is tried again that soon.
            if self._store.claim_period("catalog", self._poll_seconds, self._owner):
                return self.refresh()
            return False
        if stamp != self._loaded_stamp:
            self._load()
            with self._lock:
                self.refreshed_at = self._clock()
            log.info("picker cache taken from the store (fetched by another replica)")
        elif self.refreshed_at is None:
            self.refreshed_at = self._clock()
        return True

    def has_accepted(self, email: str) -> bool:
        """Whether awork showed this address as having accepted, at the last refresh."""
        return email.lower() in self.accepted_emails

    def is_member(self, email: str) -> bool:
        """Whether awork had a user with this email at the last refresh (never asks awork)."""
        return email.lower() in self.member_emails

    def start(self) -> None:
        """Refresh now and then every `refresh_seconds`, in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="catalog-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_shared()
            except StoreClosed:
                return  # the bot is stopping
            except Exception as exc:  # the store unreachable for a moment: try again soon
                log.warning("picker cache not refreshed: %s", type(exc).__name__)
            # Look again soon: after a failure, or when another replica may have fetched.
            self._wake.wait(self._poll_seconds)
            self._wake.clear()

    @property
    def _poll_seconds(self) -> float:
        return min(30.0, self._refresh_seconds)

    def _nudge_if_stale(self) -> None:
        stale = (
            self.refreshed_at is None or self._clock() - self.refreshed_at > self._refresh_seconds
        )
        if stale and self._thread is not None:
            self._wake.set()


def _matching(items: list[Named], query: str) -> list[Named]:
    words = query.lower().split()
    hits = [item for item in items if all(word in item.name.lower() for word in words)]
    # Names that start with what was typed come first.
    hits.sort(key=lambda item: not item.name.lower().startswith(query.lower().strip()))
    return hits[:MAX_OPTIONS]
