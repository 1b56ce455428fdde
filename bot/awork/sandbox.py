"""The awork sandbox: awork's invitation endpoints, faithfully, for trying the bot (or testing
against it) without an awork account. Nothing leaves the machine; no real invitation is sent.

It answers `httpx.Request`s (so the bot uses it in-process as an `httpx.MockTransport` when
`AWORK_API_KEY` is unset) and is served over HTTP by `invite-bot sandbox --port P`
(`bot.awork.sandbox_http`), with the spec's paths, its `ErrorResponse` errors and its rate limit
(429 with `ratelimit-reset` and `x-ratelimit-*` headers). State lives in a sqlitedict file as
JSON (the records of `bot.awork.sandbox_records`): seeded roles, teams, a first user (the
workspace owner) and a number of booked seats.

`POST /invitations` keeps awork's rules (DESIGN.md): no `workspaceId` creates a new workspace;
`planId` only then (free plan by default); `invitationFlow`, `roleId`, `teamIds`, `bookedSeats`,
`connectInviteCode`, `skipSendingEmail`, `password` are validated; gender is male, female or
other; an existing member gets `already-exist-error`; a full workspace `insufficient-seats`.
Invitation codes are valid 24 hours and accepted once with `POST /invitations/accept`.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx

from bot.awork import sandbox_records as records
from bot.store import json_table

SANDBOX_LABEL = "sandbox — no real invitation"
FLOWS = ("invite", "new_user_new_workspace", "existing_user_new_workspace")
GENDERS = ("male", "female", "other")
PLANS = ("free", "basic", "business", "enterprise")
INVITATION_FIELDS = {
    "workspaceId", "invitationFlow", "roleId", "connectInviteCode", "passcode", "email",
    "password", "firstName", "lastName", "title", "position", "gender", "skipSendingEmail",
    "teamIds", "bookedSeats", "planId",
}  # fmt: skip
STRING_FIELDS = INVITATION_FIELDS - {"skipSendingEmail", "teamIds", "bookedSeats"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CODE_VALIDITY = timedelta(hours=24)
# The in-process sandbox's base URL: a host that cannot resolve (RFC 2606 `.invalid`), so
# every logged request (httpx's "HTTP Request: GET …") names the sandbox, not api.awork.com.
API_URL = "http://awork-sandbox.invalid/api/v1"


class Sandbox:
    def __init__(
        self,
        path: str,
        per_second: int = 50,
        per_minute: int = 1000,
        seats: int = 25,
        api_key: str | None = None,
    ) -> None:
        self._meta = json_table(path, "sandbox_meta")
        self._users = json_table(path, "sandbox_users")
        self._invitations = json_table(path, "sandbox_invitations")
        self._workspaces = json_table(path, "sandbox_workspaces")
        self.per_second, self.per_minute = per_second, per_minute
        self.api_key = api_key
        self._arrivals: deque[float] = deque()
        self._lock = threading.RLock()
        self._by_workspace: dict[str, set[str]] | None = None
        self.rate_limited = 0
        if "workspace_id" not in self._meta:
            self._seed(seats)

    def close(self) -> None:
        for table in (self._meta, self._users, self._invitations, self._workspaces):
            table.close()

    # -- seeding -------------------------------------------------------------------------------

    def _seed(self, seats: int) -> None:
        workspace_id = records.new_id()
        self._workspaces[workspace_id] = records.workspace(workspace_id, "Sandbox Agency", seats)
        self._meta["roles"] = [
            records.role("Admin", admin=True),
            records.role("Member"),
            records.role("Project Manager"),
            records.role("Guest", guest=True),
        ]
        self._meta["teams"] = [
            records.team("Design", "brush", "purple"),
            records.team("Engineering", "computer", "blue"),
            records.team("Marketing", "megaphone", "orange"),
        ]
        owner = records.user("owner@sandbox.example", "Olga", "Owner", workspace_id, accepted=True)
        self._users[owner["id"]] = owner
        self._meta["owner_id"] = owner["id"]
        self._meta["workspace_id"] = workspace_id

    # -- the API ---------------------------------------------------------------------------

    @property
    def workspace_id(self) -> str:
        return self._meta["workspace_id"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as awork would (use as `httpx.MockTransport(sandbox.handle)`)."""
        limited = self._rate_limit()
        if limited is not None:
            return limited
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return records.error(401, "unauthorized", "The access token is missing or invalid.")
        path = "/" + request.url.path.split("/api/v1/", 1)[-1].strip("/")
        try:
            response = self._route(request, path)
        except (ValueError, TypeError):
            response = records.error(400, "invalid-model", "The request body is not valid JSON.")
        return response

    def _route(self, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        if method == "GET" and path == "/roles":
            return httpx.Response(200, json=self._meta["roles"])
        if method == "GET" and path == "/teams":
            return self._paged(request, self._meta["teams"])
        if method == "GET" and path == "/users":
            return self._paged(request, [records.public(u) for u in self._members()])
        if method == "GET" and path == "/users/me":
            me = records.public(self._users[self._meta["owner_id"]])
            workspace = self._workspaces[self.workspace_id]
            me["workspace"] = {"id": workspace["id"], "name": workspace["name"], "url": None}
            return httpx.Response(200, json=me)
        if method == "GET" and path.startswith("/users/autofill/"):
            return self._autofill(unquote(path.removeprefix("/users/autofill/")))
        if method == "GET" and path.startswith("/users/"):
            user = self._users.get(path.removeprefix("/users/"))
            if user is None:
                return records.error(404, "not-found", "No user with this id exists.")
            return httpx.Response(200, json=records.public(user))
        if method == "GET" and path.startswith("/workspaces/"):
            workspace = self._workspaces.get(path.removeprefix("/workspaces/"))
            if workspace is None:
                return records.error(404, "not-found", "No workspace with this id exists.")
            return httpx.Response(200, json=records.public(workspace))
        if method == "POST" and path == "/invitations":
            return self._invite(json.loads(request.content or b"{}"))
        if method == "POST" and path == "/invitations/accept":
            return self._accept(json.loads(request.content or b"{}"))
        return records.error(404, "not-found", "There is no matching path for this URL.")

    def _members(self, workspace_id: str | None = None) -> list[dict]:
        wanted = workspace_id or self.workspace_id
        users = [u for u in self._users.values() if u["_workspace"] == wanted]
        return sorted(users, key=lambda u: u["createdOn"])

    def _paged(self, request: httpx.Request, items: list[dict]) -> httpx.Response:
        try:
            page = max(1, int(request.url.params.get("page", 1)))
            size = min(max(1, int(request.url.params.get("pageSize", 50))), 1000)
        except ValueError:
            return records.error(400, "validation-failed", "page and pageSize must be numbers.")
        chunk = items[(page - 1) * size : page * size]
        return httpx.Response(200, json=chunk, headers={"aw-totalitems": str(len(items))})

    def _autofill(self, email: str) -> httpx.Response:
        """A guess from the address's local part: ada.lovelace@… -> Ada Lovelace."""
        local = email.split("@", 1)[0]
        parts = [p for p in re.split(r"[._-]+", local) if p.isalpha()]
        if len(parts) < 2:
            return httpx.Response(204)
        return httpx.Response(
            200,
            json={
                "firstName": parts[0].capitalize(),
                "lastName": parts[-1].capitalize(),
                "gender": None,
            },
        )

    # -- invitations -----------------------------------------------------------------------------

    def _problems(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for name in STRING_FIELDS:
            if body.get(name) is not None and not isinstance(body[name], str):
                problems.append((name, f"{name} must be a string."))
        email = body.get("email")
        if not isinstance(email, str) or not EMAIL.match(email):
            problems.append(("Email", "A valid email is required."))
        if body.get("gender") is not None and body["gender"] not in GENDERS:
            problems.append(("Gender", "Gender must be male, female or other."))
        flow = body.get("invitationFlow")
        if flow is not None and flow not in FLOWS:
            problems.append(("InvitationFlow", "Unknown invitation flow."))
        if body.get("planId") is not None:
            if body.get("workspaceId"):
                problems.append(("PlanId", "A plan can only be set for a new workspace."))
            elif body["planId"] not in PLANS:
                problems.append(("PlanId", f"Unknown plan; one of {', '.join(PLANS)}."))
        if body.get("workspaceId") and flow in FLOWS[1:]:
            problems.append(("InvitationFlow", "This flow creates a new workspace."))
        password = body.get("password")
        if isinstance(password, str) and (len(password) < 8 or password.isalpha()):
            problems.append(("Password", "At least 8 characters, not only letters."))
        seats = body.get("bookedSeats")
        if seats is not None and (
            not isinstance(seats, int) or isinstance(seats, bool) or seats < 1
        ):
            problems.append(("BookedSeats", "Booked seats must be a positive whole number."))
        if body.get("skipSendingEmail") is not None and not isinstance(
            body["skipSendingEmail"], bool
        ):
            problems.append(("SkipSendingEmail", "skipSendingEmail must be true or false."))
        team_ids = body.get("teamIds")
        if team_ids is not None and not (
            isinstance(team_ids, list) and all(isinstance(t, str) for t in team_ids)
        ):
            problems.append(("TeamIds", "teamIds must be a list of ids."))
        elif team_ids and any(t not in {x["id"] for x in self._meta["teams"]} for t in team_ids):
            problems.append(("TeamIds", "A team does not exist."))
        role_id = body.get("roleId")
        if role_id and role_id not in {r["id"] for r in self._meta["roles"] if not r["isArchived"]}:
            problems.append(("RoleId", "The role does not exist."))
        code = body.get("connectInviteCode")
        if isinstance(code, str) and not re.fullmatch(r"[A-Za-z0-9_-]{4,64}", code):
            problems.append(("ConnectInviteCode", "The connect invite code is not valid."))
        return problems

    def _invite(self, body: Any) -> httpx.Response:
        if not isinstance(body, dict):
            return records.error(400, "invalid-model", "The body must be an Invitation object.")
        unknown = set(body) - INVITATION_FIELDS
        if unknown:
            return records.error(400, "invalid-model", f"Unknown properties: {sorted(unknown)}")
        problems = self._problems(body)
        if problems:
            return records.error(
                400,
                "validation-failed",
                "The model is not valid.",
                validationErrors=[{"property": p, "message": m} for p, m in problems],
            )
        email = body["email"].strip().lower()
        with self._lock:
            if body.get("workspaceId"):
                workspace = self._workspaces.get(body["workspaceId"])
                if workspace is None:
                    return records.error(404, "not-found", "No workspace with this id exists.")
                members = self._index()[workspace["id"]]
                if email in members:
                    return records.error(
                        400, "already-exist-error", "The identity is already part of the workspace."
                    )
                if body.get("bookedSeats"):
                    workspace["_seats"] = max(workspace["_seats"], body["bookedSeats"])
                    self._workspaces[workspace["id"]] = workspace
                if len(members) >= workspace["_seats"]:
                    return records.error(
                        400, "insufficient-seats", "There are no free seats left in this workspace."
                    )
            else:  # a new workspace for them, on the chosen plan (free by default)
                name = f"{body.get('firstName') or email.split('@')[0]}'s workspace"
                workspace = records.workspace(
                    records.new_id(),
                    name,
                    body.get("bookedSeats") or 5,
                    plan=body.get("planId") or "free",
                )
                self._workspaces[workspace["id"]] = workspace
            user = records.user(
                email, body.get("firstName"), body.get("lastName"), workspace["id"], accepted=False
            )
            for field in ("title", "position", "gender"):
                if body.get(field) is not None:
                    user[field] = body[field]
            user["_role"] = body.get("roleId")
            user["_teams"] = body.get("teamIds") or []
            self._users[user["id"]] = user
            self._index().setdefault(workspace["id"], set()).add(email)
            code = secrets.token_urlsafe(16)
            invitation = {
                "code": code,
                "userId": user["id"],
                "workspaceId": workspace["id"],
                "email": email,
                "flow": body.get("invitationFlow")
                or ("invite" if body.get("workspaceId") else "new_user_new_workspace"),
                "emailSent": not body.get("skipSendingEmail", False),
                "issuedAt": records.now(),
                "accepted": False,
                "passwordResetCode": secrets.token_urlsafe(12),
            }
            self._invitations[code] = invitation
        return httpx.Response(
            200,
            json={
                "invitationCode": code,
                "passwordResetCode": invitation["passwordResetCode"],
                "userId": user["id"],
                "workspace": records.public(workspace),
            },
        )

    def _index(self) -> dict[str, set[str]]:
        """Member addresses by workspace, read once from the file and kept up to date."""
        if self._by_workspace is None:
            self._by_workspace = {}
            for user in self._users.values():
                self._by_workspace.setdefault(user["_workspace"], set()).update(
                    records.emails(user)
                )
        return self._by_workspace

    def _accept(self, body: Any) -> httpx.Response:
        code = body.get("invitationCode") if isinstance(body, dict) else None
        with self._lock:
            invitation = self._invitations.get(code) if isinstance(code, str) else None
            if invitation is None:
                return records.error(400, "invalid-operation", "The invitation code is not valid.")
            if invitation["accepted"]:
                return records.error(
                    400, "invalid-operation", "The invitation was accepted already."
                )
            issued = datetime.fromisoformat(invitation["issuedAt"].replace("Z", "+00:00"))
            if datetime.now(UTC) - issued > CODE_VALIDITY:
                return records.error(400, "invalid-operation", "The invitation code has expired.")
            invitation["accepted"] = True
            self._invitations[code] = invitation
            user = self._users[invitation["userId"]]
            user["status"]["invitationAccepted"] = True
            self._users[user["id"]] = user
        return httpx.Response(200)

    # -- limits and errors ---------------------------------------------------------------------

    def _rate_limit(self) -> httpx.Response | None:
        """awork's per-workspace limit: sliding windows over arrivals; 429 past them."""
        with self._lock:  # the time is read under the lock, or a waiting call counts late ones
            now = time.monotonic()
            while self._arrivals and now - self._arrivals[0] >= 60.0:
                self._arrivals.popleft()
            last_second = [t for t in self._arrivals if now - t < 1.0]
            over_second = len(last_second) >= self.per_second
            if not over_second and len(self._arrivals) < self.per_minute:
                self._arrivals.append(now)
                return None
            self.rate_limited += 1
            oldest = last_second[0] if over_second else self._arrivals[0]
            reset = max(1, math.ceil(oldest + (1.0 if over_second else 60.0) - now))
        # As DESIGN.md describes awork's: `ratelimit-reset` in seconds and `x-ratelimit-*`.
        response = records.error(429, "rate-limited", "Too many requests; slow down.")
        limit = self.per_second if over_second else self.per_minute
        response.headers.update(
            {
                "ratelimit-reset": str(reset),
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(reset),
            }
        )
        return response

    # -- inspection (tests, the shell) ---------------------------------------------------------

    def invitations(self) -> list[dict]:
        return list(self._invitations.values())
