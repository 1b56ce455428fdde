"""The invite service: the rules of asking, deciding and inviting, apart from Slack."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from bot.awork import AworkClient, AworkError
from bot.catalog import Catalog
from bot.models import Failure, InviteDetails, InviteRequest, MessageRef, Status, utcnow
from bot.store import Store

log = logging.getLogger(__name__)


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    NOT_APPROVER = "not_approver"
    ALREADY_DECIDED = "already_decided"


@dataclass(frozen=True)
class Decision:
    """What came of an approve/deny/retry: `request` is as stored after the attempt."""

    request: InviteRequest | None
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


class InviteService:
    def __init__(
        self,
        store: Store,
        awork: AworkClient,
        catalog: Catalog,
        approvers: frozenset[str],
        accept_url_template: str,
        workspace_id: str | None = None,
    ) -> None:
        self.store = store
        self.awork = awork
        self.catalog = catalog
        self.approvers = approvers
        self.accept_url_template = accept_url_template
        self._workspace_id = workspace_id
        self._workspace_lock = threading.Lock()

    def is_approver(self, user_id: str) -> bool:
        return user_id in self.approvers

    # -- asking ------------------------------------------------------------------------------

    def submit(
        self, details: InviteDetails, requester_id: str, origin_channel: str | None
    ) -> InviteRequest:
        """Store a new pending request. Nothing else happens before it is stored."""
        if details.uses_advanced() and not self.is_approver(requester_id):
            raise PermissionError("only approvers may use the advanced fields")
        role = self.catalog.role(details.role_id)
        request = InviteRequest(
            requester_id=requester_id,
            origin_channel=origin_channel,
            details=details,
            role_name=role.name if role else None,
            team_names=self.catalog.team_names(details.team_ids),
        )
        self.store.add(request)
        log.info("request %s stored (requester %s)", request.id, requester_id)
        return request

    def record_approval_message(self, request_id: str, channel: str, ts: str) -> None:
        self.store.update(request_id, approval_message=MessageRef(channel=channel, ts=ts))

    # -- deciding ----------------------------------------------------------------------------

    def approve(self, request_id: str, approver_id: str) -> Decision:
        """Claim the request for inviting. Exactly one caller ever gets `ok` for a request,
        and again only after a failure that may be retried."""
        current = self.store.get(request_id)
        if current is None:
            return Decision(None, Refusal.NOT_FOUND)
        if not self.is_approver(approver_id):
            return Decision(current, Refusal.NOT_APPROVER)
        expected = {Status.PENDING}
        if current.status is Status.FAILED and current.failure and current.failure.retryable:
            expected.add(Status.FAILED)
        changes: dict[str, object] = {"failure": None, "attempts": current.attempts + 1}
        if current.status is Status.PENDING:
            changes.update(decided_by=approver_id, decided_at=utcnow())
        ok, request = self.store.transition(request_id, expected, Status.INVITING, **changes)
        if not ok:
            return Decision(request, Refusal.ALREADY_DECIDED)
        log.info("request %s approved by %s", request_id, approver_id)
        return Decision(request)

    def can_deny(self, request_id: str, approver_id: str) -> Decision:
        """Whether a deny may start (the reason is asked for before anything is changed)."""
        current = self.store.get(request_id)
        if current is None:
            return Decision(None, Refusal.NOT_FOUND)
        if not self.is_approver(approver_id):
            return Decision(current, Refusal.NOT_APPROVER)
        if current.status is not Status.PENDING:
            return Decision(current, Refusal.ALREADY_DECIDED)
        return Decision(current)

    def deny(self, request_id: str, approver_id: str, reason: str) -> Decision:
        decision = self.can_deny(request_id, approver_id)
        if not decision.ok:
            return decision
        ok, request = self.store.transition(
            request_id,
            {Status.PENDING},
            Status.DENIED,
            decided_by=approver_id,
            decided_at=utcnow(),
            deny_reason=reason,
        )
        if not ok:
            return Decision(request, Refusal.ALREADY_DECIDED)
        log.info("request %s denied by %s", request_id, approver_id)
        return Decision(request)

    # -- inviting ----------------------------------------------------------------------------

    def invite(self, request_id: str) -> InviteRequest:
        """Call awork for a request this process claimed with `approve` (status INVITING)."""
        request = self.store.get(request_id)
        if request is None or request.status is not Status.INVITING:
            raise ValueError(f"request {request_id} is not being invited")
        try:
            invitation = request.details.to_invitation(self.workspace_id())
            result = self.awork.create_invitation(invitation)
        except AworkError as exc:
            failure = describe_failure(exc, request.details.email)
            log.warning("request %s: awork refused (%s)", request_id, exc.code)
            _, stored = self.store.transition(
                request_id, {Status.INVITING}, Status.FAILED, failure=failure
            )
            return stored or request
        _, stored = self.store.transition(
            request_id, {Status.INVITING}, Status.INVITED, result=result
        )
        log.info("request %s: invitation created", request_id)
        return stored or request

    def workspace_id(self) -> str:
        """The configured workspace, else the API key's own, asked of awork once and kept."""
        with self._workspace_lock:
            if not self._workspace_id:
                self._workspace_id = self.store.get_meta("workspace_id")
            if not self._workspace_id:
                self._workspace_id = self.awork.workspace_id()
                self.store.set_meta("workspace_id", self._workspace_id)
            return self._workspace_id

    def accept_link(self, request: InviteRequest) -> str:
        """The acceptance link; a credential, for DMs only."""
        if request.result is None:
            raise ValueError("request has no invitation")
        return self.accept_url_template.format(
            code=quote(request.result.invitation_code.get_secret_value(), safe=""),
            email=quote(request.details.email, safe=""),
        )


def describe_failure(exc: AworkError, email: str) -> Failure:
    """awork's error in words an admin acts on. Never includes a key or a code."""
    props = " ".join(item["property"].lower() for item in exc.validation_errors)
    text = f"{exc.description} {' '.join(exc.details)}".lower()
    if exc.retryable:
        message = "awork is not answering right now, so nobody was invited. Try again shortly."
        return Failure(code=exc.code, message=message, retryable=True)
    if exc.code == "already-exist-error":
        message = f"{email} is already in the awork workspace."
    elif exc.code == "insufficient-seats":
        message = "awork has no free seats left. Book more seats in awork, then ask again."
    elif exc.code == "unauthorized" or exc.status == 401:
        message = "awork refused the bot's API key. An admin needs to check AWORK_API_KEY."
    elif "role" in props or "team" in props or "role" in text or "team" in text:
        message = "The chosen role or a team is not valid in awork any more. Ask again with a current one."
    elif exc.code == "not-found" or exc.status == 404:
        message = "awork could not find the workspace, role or team for this invitation."
    elif exc.code in ("validation-failed", "invalid-model") and exc.validation_errors:
        reasons = "; ".join(
            f"{item['property']}: {item['message']}".strip(": ") for item in exc.validation_errors
        )
        message = f"awork did not accept the invitation: {reasons}"
    else:
        message = f"awork refused the invitation ({exc.code}) {exc.description}".strip()
    return Failure(code=exc.code, message=message, retryable=False)
