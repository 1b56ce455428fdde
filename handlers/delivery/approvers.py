"""Who may approve: Slack user ids and user groups from INVITE_APPROVERS.

A group id (`S…`) stands for its current members, read with `usergroups.users.list` (scope
`usergroups:read`) and refreshed with the sweep; when Slack cannot be asked, the last known
members stay approvers.
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient

from handlers.delivery.slack_errors import SEND_ERRORS, slack_error

log = logging.getLogger(__name__)


class ApproverDirectory:
    def __init__(
        self, client: WebClient, configured: frozenset[str], refresh_seconds: float = 300.0
    ) -> None:
        self.client = client
        self.users = frozenset(i for i in configured if not i.startswith("S"))
        self.groups = frozenset(i for i in configured if i.startswith("S"))
        self.refresh_seconds = refresh_seconds
        self._members: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()
        self._refreshed_at: float | None = None

    def current(self) -> frozenset[str]:
        """Everyone who may approve now (never calls Slack)."""
        with self._lock:
            members = frozenset().union(*self._members.values()) if self._members else frozenset()
        return self.users | members

    def refresh(self, force: bool = False) -> None:
        """Read the groups' members again, at most every `refresh_seconds` unless forced."""
        now = time.monotonic()
        if not self.groups or (
            not force and self._refreshed_at and now - self._refreshed_at < self.refresh_seconds
        ):
            return
        for group in sorted(self.groups):
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
