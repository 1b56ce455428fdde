"""A stand-in for awork's API v1 that follows `tests/fixtures/awork/awork-openapi-subset.json`.

Usable as `httpx.MockTransport(fake.handler)` in-process, or over loopback HTTP with `serve()`.
It records every request, and faults can be queued (`fail_next`) or a delay set (`delay`).
"""

from __future__ import annotations

import json
import math
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import httpx

from bot.awork.sandbox_http import http_server

INVITATION_FIELDS = {
    "workspaceId", "invitationFlow", "roleId", "connectInviteCode", "passcode", "email",
    "password", "firstName", "lastName", "title", "position", "gender", "skipSendingEmail",
    "teamIds", "bookedSeats", "planId",
}  # fmt: skip
FLOWS = {"invite", "new_user_new_workspace", "existing_user_new_workspace"}
GENDERS = {"male", "female", "other"}

ROLE_ADMIN = "5d1f9a7e-0000-4000-8000-000000000001"
ROLE_MEMBER = "5d1f9a7e-0000-4000-8000-000000000002"
ROLE_PM = "5d1f9a7e-0000-4000-8000-000000000003"
TEAM_DESIGN = "7e2a0c11-0000-4000-8000-000000000001"
TEAM_ENGINEERING = "7e2a0c11-0000-4000-8000-000000000002"
WORKSPACE_ID = "9a8b7c6d-0000-4000-8000-000000000001"
API_KEY = "awork-test-key-0123456789"


def awork_user(
    email: str, first: str, last: str, accepted: bool = True, created_on: str | None = None
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "createdOn": created_on or datetime.now(UTC).isoformat(),
        "firstName": first,
        "lastName": last,
        "status": {"invitationAccepted": accepted, "isDeactivated": False},
        "userContactInfos": [
            {"type": "phone", "subType": "work", "value": "+49 30 1234"},
            {"type": "email", "subType": "work", "value": email},
        ],
        "isArchived": False,
    }


@dataclass
class Fault:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None  # only requests to this path; None = any
    after_processing: bool = False  # do the work, then answer with the fault (a lost answer)
    raw: bytes | None = None  # answer with this body as it is (not JSON), e.g. a proxy's page

    def answer(self) -> httpx.Response:
        if self.raw is not None:
            return httpx.Response(self.status, content=self.raw, headers=self.headers)
        return httpx.Response(self.status, json=self.body, headers=self.headers)


class FakeAwork:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.workspace = {"id": WORKSPACE_ID, "name": "NCNSTN Creative Agency"}
        self.roles = [
            {"id": ROLE_ADMIN, "name": "Admin", "isAdminRole": True, "isGuestRole": False},
            {"id": ROLE_MEMBER, "name": "Member", "isAdminRole": False, "isGuestRole": False},
            {"id": ROLE_PM, "name": "Project Manager", "isAdminRole": False, "isGuestRole": False},
            {"id": str(uuid.uuid4()), "name": "Old role", "isArchived": True},
        ]
        self.teams = [
            {"id": TEAM_DESIGN, "name": "Design", "icon": "brush", "color": "purple"},
            {"id": TEAM_ENGINEERING, "name": "Engineering", "icon": "computer", "color": "blue"},
        ]
        self.users = [
            awork_user("owner@ncnstn.com", "Olga", "Owner", created_on="2021-03-01T09:00:00Z")
        ]
        self.invitations: list[dict[str, Any]] = []
        # GET /users/autofill/{email}: AutofillUser by address; others get 204.
        self.autofill: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request, as in `requests`
        self.seats_free: int | None = None
        self.delay = 0.0
        self.post_delay = 0.0  # extra time awork takes to create an invitation (POST only)
        self.fail_next: list[Fault] = []
        self.down = False
        # 404 or 405: this awork no longer offers POST /invitations (its published spec no
        # longer lists it); 404 as for any unknown path, 405 with an empty body and `Allow`.
        self.invitations_gone: int | None = None
        # (per second, per minute) like awork's per-workspace limit; None = unlimited.
        self.rate_limit: tuple[int, int] | None = None
        self.rate_limited = 0  # how many calls were answered 429
        self.limited_at: list[float] = []
        self._arrivals: list[float] = []
        self._lock = threading.Lock()

    # -- inspection ------------------------------------------------------------------------

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.endswith(path)]

    # -- the API ---------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            self.arrivals.append(time.monotonic())
        # The gateway counts a call when it arrives and answers 429 at once, before any work.
        limited = None if self.down else self._over_rate_limit()
        if limited is not None:
            return limited
        if self.delay:
            time.sleep(self.delay)
        if (
            self.post_delay
            and request.method == "POST"
            and request.url.path.endswith("/invitations")
        ):
            time.sleep(self.post_delay)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path.split("/api/v1", 1)[-1]
        fault = self._take_fault(path)
        if fault is not None and not fault.after_processing:
            return fault.answer()
        response = self._route(request, path)
        if fault is not None:
            return fault.answer()
        return response

    def _over_rate_limit(self) -> httpx.Response | None:
        """A 429 with `ratelimit-reset` when the calls of the last second or minute are over
        the limit (sliding windows over arrival times, as a gateway counts them)."""
        if self.rate_limit is None:
            return None
        per_second, per_minute = self.rate_limit
        with self._lock:  # the time is read under the lock, or a waiting call counts late ones
            now = time.monotonic()
            self._arrivals = [t for t in self._arrivals if now - t < 60.0]
            last_second = [t for t in self._arrivals if now - t < 1.0]
            if len(last_second) >= per_second or len(self._arrivals) >= per_minute:
                self.rate_limited += 1
                self.limited_at.append(now)
                oldest = last_second[0] if len(last_second) >= per_second else self._arrivals[0]
                window = 1.0 if len(last_second) >= per_second else 60.0
                reset = max(1, math.ceil(oldest + window - now))
                headers = {
                    "ratelimit-limit": str(per_second),
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": str(reset),
                    "x-ratelimit-limit": str(per_second),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(reset),
                }
                response = _error(429, "rate-limited", "Too many requests.")
                return httpx.Response(429, json=json.loads(response.content), headers=headers)
            self._arrivals.append(now)
        return None

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.fail_next:
                if fault.path is None or fault.path == path:
                    self.fail_next.remove(fault)
                    return fault
        return None

    def _route(self, request: httpx.Request, path: str) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "unauthorized", "The access token is missing or invalid.")
        route = (request.method, path)
        if route == ("GET", "/roles"):
            return httpx.Response(200, json=self.roles)
        if route == ("GET", "/teams"):
            return self._paged(request, self.teams)
        if route == ("GET", "/users"):
            return self._paged(request, self.users)
        if route == ("GET", "/users/me"):
            me = dict(self.users[0])
            me["workspace"] = self.workspace
            return httpx.Response(200, json=me)
        if request.method == "GET" and path.startswith("/users/autofill/"):
            guess = self.autofill.get(unquote(path.removeprefix("/users/autofill/")).lower())
            return httpx.Response(200, json=guess) if guess else httpx.Response(204)
        if route == ("POST", "/invitations") and self.invitations_gone == 405:
            return httpx.Response(405, headers={"Allow": "GET"})
        if route == ("POST", "/invitations") and self.invitations_gone is None:
            return self._invite(json.loads(request.content or b"{}"))
        if route == ("POST", "/invitations/accept"):
            return self._accept(json.loads(request.content or b"{}"))
        return _error(404, "not-found", "There is no matching path for this URL.")

    def _paged(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        page = int(request.url.params.get("page", 1))
        size = min(int(request.url.params.get("pageSize", 10)), 1000)
        chunk = items[(page - 1) * size : page * size]
        return httpx.Response(200, json=chunk, headers={"aw-totalitems": str(len(items))})

    def _invite(self, body: dict[str, Any]) -> httpx.Response:
        unknown = set(body) - INVITATION_FIELDS
        if unknown:
            return _error(400, "invalid-model", f"Unknown properties: {sorted(unknown)}")
        problems = []
        if not body.get("email") or "@" not in body["email"]:
            problems.append(("Email", "Email is required."))
        if body.get("gender") is not None and body["gender"] not in GENDERS:
            problems.append(("Gender", "Gender must be male, female or other."))
        if body.get("invitationFlow") is not None and body["invitationFlow"] not in FLOWS:
            problems.append(("InvitationFlow", "Unknown invitation flow."))
        if body.get("planId") and body.get("workspaceId"):
            problems.append(("PlanId", "A plan can only be set for a new workspace."))
        if body.get("roleId") and body["roleId"] not in {r["id"] for r in self.roles}:
            problems.append(("RoleId", "The role does not exist."))
        team_ids = {t["id"] for t in self.teams}
        if any(team not in team_ids for team in body.get("teamIds") or []):
            problems.append(("TeamIds", "A team does not exist."))
        if problems:
            return _error(
                400,
                "validation-failed",
                "The model is not valid.",
                validationErrors=[{"property": p, "message": m} for p, m in problems],
            )
        email = body["email"].lower()
        with self._lock:
            new_workspace = not body.get("workspaceId")
            if not new_workspace:
                if body["workspaceId"] != self.workspace["id"]:
                    return _error(404, "not-found", "No workspace with this id exists.")
                if any(
                    email
                    in [c["value"].lower() for c in u["userContactInfos"] if c["type"] == "email"]
                    for u in self.users
                ):
                    return _error(
                        400, "already-exist-error", "The identity is already part of the workspace."
                    )
                if self.seats_free is not None:
                    if self.seats_free <= 0:
                        return _error(400, "insufficient-seats", "There are no free seats left.")
                    self.seats_free -= 1
                user = awork_user(
                    email, body.get("firstName") or "", body.get("lastName") or "", accepted=False
                )
                self.users.append(user)
                workspace = self.workspace
            else:
                user = awork_user(
                    email, body.get("firstName") or "", body.get("lastName") or "", accepted=False
                )
                workspace = {
                    "id": str(uuid.uuid4()),
                    "name": f"{body.get('firstName') or email}'s workspace",
                }
            invitation = {
                "body": body,
                "invitationCode": secrets.token_urlsafe(12) + "=",
                "passwordResetCode": secrets.token_urlsafe(8) + "=",
                "userId": user["id"],
                "workspace": workspace,
            }
            self.invitations.append(invitation)
        return httpx.Response(
            200,
            json={
                k: invitation[k]
                for k in ("invitationCode", "passwordResetCode", "userId", "workspace")
            },
        )

    def _accept(self, body: dict[str, Any]) -> httpx.Response:
        with self._lock:
            for invitation in self.invitations:
                if invitation["invitationCode"] != body.get("invitationCode"):
                    continue
                if invitation.get("accepted"):
                    return _error(400, "invalid-operation", "The invitation was accepted already.")
                invitation["accepted"] = True
                for user in self.users:
                    if user["id"] == invitation["userId"]:
                        user["status"]["invitationAccepted"] = True
                return httpx.Response(200, json={"workspace": invitation["workspace"]})
        return _error(400, "invalid-operation", "The invitation code is not valid.")

    # -- loopback HTTP ---------------------------------------------------------------------

    def serve(self, tls: ssl.SSLContext | None = None) -> tuple[str, ThreadingHTTPServer]:
        """Serve this fake on 127.0.0.1 (as `invite-bot sandbox` serves the sandbox), over https
        with `tls` (a server context); returns (base URL, server) - call server.shutdown()."""
        server = http_server(self.handler, "127.0.0.1", 0)
        scheme = "http"
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True
        ).start()
        return f"{scheme}://127.0.0.1:{server.server_address[1]}/api/v1", server


def _error(status: int, code: str, description: str, **extra: Any) -> httpx.Response:
    body = {
        "code": code,
        "description": description,
        "link": "https://developers.awork.com",
        "traceId": secrets.token_hex(8),
        **extra,
    }
    return httpx.Response(status, json=body)
