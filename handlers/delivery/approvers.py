"""Who may approve: Slack user ids and user groups from INVITE_APPROVERS (and those the
policy names: its requesters and its routes' approvers).

A group id (`S…`) stands for its current members, read with `usergroups.users.list` (scope
`usergroups:read`) and refreshed with the sweep; when Slack cannot be asked, the last known
members stay approvers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from slack_sdk import WebClient

from handlers.delivery.slack_errors import SEND_ERRORS, slack_error

log = logging.getLogger(__name__)


class ApproverDirectory:
    def __init__(
        self,
        client: WebClient,
        configured: frozenset[str],
        refresh_seconds: float = 300.0,
        named_elsewhere: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        self.client = client
        self.users = frozenset(i for i in configured if not i.startswith("S"))
        self.configured_groups = frozenset(i for i in configured if i.startswith("S"))
        self.named_elsewhere = named_elsewhere  # the policy's user groups
        self.refresh_seconds = refresh_seconds
        self._members: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()
        self._refreshed_at: float | None = None

    def current(self) -> frozenset[str]:
        """The default approvers now, INVITE_APPROVERS (never calls Slack)."""
        return self.resolve(self.users | self.configured_groups)

    @property
    def groups(self) -> frozenset[str]:
        return self.configured_groups | self.named_elsewhere()

    def resolve(self, ids: Iterable[str]) -> frozenset[str]:
        """The users `ids` stand for: user ids as they are, a group by its last known members
        (never calls Slack)."""
        ids = frozenset(ids)
        with self._lock:
            members = [self._members.get(group, frozenset()) for group in ids if group[:1] == "S"]
        return frozenset(i for i in ids if i[:1] != "S").union(*members)

    def refresh(self, force: bool = False) -> None:
        """Read the groups' members again, at most every `refresh_seconds` unless forced (or
        a group was named that has not been read yet)."""
        now = time.monotonic()
        with self._lock:
            unread = bool(self.groups - set(self._members))
        if not self.groups or (
            not force
            and not unread
            and self._refreshed_at
            and now - self._refreshed_at < self.refresh_seconds
        ):
            return
        for group in sorted(self.groups):  # a failed read is tried again next time
            try:
                users = self.client.usergroups_users_list(usergroup=group)["users"]
            except SEND_ERRORS as exc:
                log.warning(
                    "could not read the members of user group %s: %s", group, slack_error(exc)
                )
                continue
            with self._lock:
                self._members[group] = frozenset(users)
        self._refreshed_at = now
