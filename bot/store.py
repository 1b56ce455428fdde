"""The embedded store: invite requests and a little state, JSON in a sqlitedict file.

Every state change is a compare-and-set: it is written only when the request is still in one of
the states the caller expected, so a double click, a second approver or a retried delivery
finds the request already moved on and changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from sqlitedict import SqliteDict

from bot.models import InviteRequest, Status, utcnow


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        # JSON, never pickle: a store file must not be able to run code when it is read.
        options: dict[str, Any] = {
            "autocommit": True,
            "encode": json.dumps,
            "decode": json.loads,
            "outer_stack": False,
        }
        self._requests = SqliteDict(path, tablename="requests", **options)
        self._meta = SqliteDict(path, tablename="meta", **options)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._requests.close()
            self._meta.close()

    # -- requests ---------------------------------------------------------------------------

    def add(self, request: InviteRequest) -> InviteRequest:
        with self._lock:
            if request.id in self._requests:
                raise KeyError(f"request {request.id} exists already")
            self._requests[request.id] = request.model_dump(mode="json")
        return request

    def get(self, request_id: str) -> InviteRequest | None:
        raw = self._requests.get(request_id)
        return InviteRequest.model_validate(raw) if raw is not None else None

    def transition(
        self, request_id: str, expected: Iterable[Status], to: Status, **changes: Any
    ) -> tuple[bool, InviteRequest | None]:
        """Move a request to `to` only if it is in one of `expected`.

        Returns (True, the new request) when this call made the change, else (False, the
        request as it is, or None when there is no such request).
        """
        expected = frozenset(expected)
        with self._lock:
            current = self.get(request_id)
            if current is None or current.status not in expected:
                return False, current
            return True, self._write(current, status=to, **changes)

    def update(self, request_id: str, **changes: Any) -> InviteRequest | None:
        """Change fields that are not the state (message references, delivery notes)."""
        with self._lock:
            current = self.get(request_id)
            return self._write(current, **changes) if current is not None else None

    def _write(self, current: InviteRequest, **changes: Any) -> InviteRequest:
        updated = current.model_copy(
            update={**changes, "version": current.version + 1, "updated_at": utcnow()}
        )
        # Re-validate so a bad change cannot be stored and break later reads.
        updated = InviteRequest.model_validate(updated.model_dump(mode="json"))
        self._requests[updated.id] = updated.model_dump(mode="json")
        return updated

    def requests(self, *statuses: Status) -> Iterator[InviteRequest]:
        for raw in self._requests.values():
            request = InviteRequest.model_validate(raw)
            if not statuses or request.status in statuses:
                yield request

    # -- small state ------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = value
