"""Buttons on the approval message: approve, deny (asks for a reason), try again; and in DMs:
accept, invite again, retry failed. Each acks at once; the decision it asks for is stored
after the ack, or its clicker is told to click again (handlers/clicks.py)."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.records import InviteRequest, Status
from bot.i18n import _
from bot.runtime.deps import Deps
from bot.services.joining import AcceptOutcome
from bot.store.budget import CALL_SECONDS
from bot.store.leasing import DeliveryLease
from bot.ui import answers, approval, bulk_blocks, bulk_notices, forms, mrkdwn, notices
from handlers.clicks import Clicker, decided

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    service = deps.service
    courier = deps.courier

    def approve(ack: Ack, body: dict) -> None:
        ack()
        deps.later(_approve, body)

    def _approve(body: dict) -> None:
        target, clicker = _request_id(body), Clicker.of(body)
        if is_batch(target):  # "Approve all N": the same button, on a batch's message
            run_batch_approval(deps, target, clicker.user, clicker.channel, clicker=clicker)
            return
        run_approval(deps, target, clicker.user, clicker.channel, clicker=clicker)

    def deny(ack: Ack, body: dict) -> None:
        ack()
        deps.open_modal(_deny, body)  # asks for the reason in a modal

    def _deny(body: dict) -> None:
        user = body["user"]["id"]
        target = _request_id(body)
        if is_batch(target):
            can_deny, answer = deps.batches.can_deny, bulk_notices.batch_refusal
        else:
            can_deny, answer = service.can_deny, answers.refusal
        # Quick: the modal's trigger_id lives 3 s.
        decision = decided(
            deps, Clicker.of(body), "deny", lambda: can_deny(target, user), CALL_SECONDS
        )
        if decision is None:
            return
        if not decision.ok:
            courier.tell(user, _channel(body), answer(decision.request, decision.refusal))
            return
        try:
            # The app's own client (Bolt's per-request one is a plain WebClient, without the
            # sandbox label and not the shell's terminal Slack).
            deps.modal_client.views_open(
                trigger_id=body["trigger_id"], view=forms.deny_reason_modal(decision.request)
            )
        except SlackApiError as exc:
            log.warning("could not open the deny modal: %s", exc.response.get("error"))

    def accept(ack: Ack, body: dict) -> None:
        ack()
        deps.later(_accept, body)

    def _accept(body: dict) -> None:
        user = body["user"]["id"]
        # No time budget: awork is called between the store's writes.
        accepted = decided(
            deps, Clicker.of(body), "accept", lambda: service.accept(_request_id(body), user), 0
        )
        if accepted is None:
            return
        outcome, request = accepted
        channel = _channel(body)
        message_ts = (body.get("container") or {}).get("message_ts")
        if outcome == AcceptOutcome.JOINED and request is not None:
            text, joined = notices.joined_dm(request, service.password_link(request))
            if channel and message_ts:
                courier.replace(channel, message_ts, text, joined)
            courier.sync(request.id)
            return
        answer = _(answers.ACCEPT_ANSWERS[outcome.value])
        if outcome in (AcceptOutcome.LAPSED, AcceptOutcome.REFUSED) and channel and message_ts:
            courier.replace(channel, message_ts, answer, [mrkdwn.section(answer)])
        else:
            courier.tell(user, channel, answer)
        if request is not None and outcome in (AcceptOutcome.LAPSED, AcceptOutcome.REFUSED):
            courier.sync(request.id)  # the approval message, and "Invite again" for the requester

    def invite_again(ack: Ack, body: dict) -> None:
        ack()
        deps.later(_invite_again, body)

    def _invite_again(body: dict) -> None:
        user = body["user"]["id"]
        decision = decided(
            deps,
            Clicker.of(body),
            "invite_again",
            lambda: service.invite_again(_request_id(body), user),
        )
        if decision is None:
            return
        if not decision.ok:
            text = answers.accept_answer(str(decision.refusal)) or answers.refusal(
                decision.request, decision.refusal
            )
            courier.tell(user, _channel(body), text)
            return
        courier.sync(decision.request.id)  # a new approval message and "waiting" notice

    app.action(approval.APPROVE)(approve)
    app.action(notices.ACCEPT)(accept)
    app.action(notices.INVITE_AGAIN)(invite_again)
    app.action(approval.RETRY)(approve)
    app.action(approval.DENY)(deny)

    def retry_failed(ack: Ack, body: dict) -> None:
        ack()
        deps.later(_retry_failed, body)

    def _retry_failed(body: dict) -> None:
        user = body["user"]["id"]
        batch_id, after_run = bulk_blocks.retry_target(_request_id(body))
        decision = decided(
            deps,
            Clicker.of(body),
            "retry_failed",
            lambda: deps.batches.retry_failed(batch_id, user, after_run),
        )
        if decision is None:
            return
        if not decision.ok:
            text = bulk_notices.batch_refusal(decision.request, decision.refusal)
            courier.tell(user, _channel(body), text)
            return
        courier.run_batch(decision.request.id, decision.request.claim_id)

    app.action(bulk_blocks.RETRY_FAILED)(retry_failed)


def is_batch(target_id: str) -> bool:
    return target_id.startswith("bat-")


def run_batch_approval(
    deps: Deps,
    batch_id: str,
    user: str,
    channel: str | None,
    own_allowed: bool = False,
    clicker: Clicker | None = None,
) -> None:
    """An approval of a whole batch: the one that completes it runs the batch."""
    decision = decided(
        deps,
        clicker or Clicker(user, channel),
        "approve",
        lambda: deps.batches.approve(batch_id, user, own_allowed=own_allowed),
    )
    if decision is None:
        return
    if not decision.ok:
        deps.courier.tell(
            user, channel, bulk_notices.batch_refusal(decision.request, decision.refusal)
        )
        return
    if decision.request.status is BatchStatus.PENDING:  # the first of two approvals
        deps.courier.sync_batch(batch_id)
        deps.courier.tell(user, channel, _(answers.FIRST_APPROVAL))
        return
    deps.courier.run_batch(batch_id, decision.request.claim_id)


def run_approval(
    deps: Deps,
    request_id: str,
    user: str,
    channel: str | None,
    own_allowed: bool = False,
    clicker: Clicker | None = None,
) -> None:
    """An approval from a click (or a self-approved submission): record it, and when it is
    the one that completes the request, invite in awork and bring Slack up to date. Once the
    approval is stored (`pending -> inviting` under a lease), a failure of what follows is
    the sweep's to finish: it takes the request over when the lease has expired."""
    service, courier = deps.service, deps.courier
    lease = courier.lease_here()  # the delivery lease of the round that shows the decision
    decision = decided(
        deps,
        clicker or Clicker(user, channel),
        "approve",
        lambda: service.approve(request_id, user, own_allowed=own_allowed, lease=lease),
    )
    if decision is None:
        return
    if not decision.ok:
        courier.tell(user, channel, answers.refusal(decision.request, decision.refusal))
        return
    request = decision.request
    if request.status is Status.PENDING:  # the first of two approvals
        courier.sync(request.id, lease=lease, stored=request)
        courier.tell(user, channel, _(answers.FIRST_APPROVAL))
        return
    invite_approved(deps, request, lease)


def invite_approved(deps: Deps, request: InviteRequest, lease: DeliveryLease | None = None) -> None:
    """A request whose approval (an approver's, or the policy's) claimed it for inviting:
    invite in awork under that claim and bring Slack up to date before and after. `lease`:
    the delivery lease taken with the approval, if it was. Each round's delivery lease is
    taken with the change it shows, so it begins without a write of its own."""
    service, courier = deps.service, deps.courier
    claim = request.claim_id  # the claim this approval took: the only one it works under
    invitee = None
    if request.invitee_slack_id is None:
        invitee = courier.slack_user(request.details.email)  # Slack may take long
    # "Approved by @x, inviting…"; the round's lease given back, with what the message shows
    # now, by the work lease's renewal before awork is asked (`Courier._sync`'s closing: only
    # while the lease is still this round's, its notes only on the version it left). Without
    # that renewal (the claim was lost, the store failed) the next round below takes the lease
    # back as its own; only a crash leaves it to run out before the sweep delivers.
    close = service.work.with_next_renewal
    courier.sync(
        request.id,
        lease=lease,
        stored=request,
        close_with=lambda closing: close(request.id, claim, also=closing),
    )
    # Under that claim, the request as written last (what Slack was told since is not read
    # again: only the delivery notes changed), the invitee's account stored with the lease's
    # renewal before awork is asked.
    lease = courier.lease_here()
    settled = service.invite(request.id, claim, request, invitee_slack_id=invitee, lease=lease)
    courier.sync(request.id, lease=lease, stored=settled)


def after_asked(deps: Deps, request: InviteRequest, requester: str, origin: str | None) -> None:
    """After the ack of a stored request: approved by the policy, it is invited at once;
    otherwise names awork suggests are filled in, the approvers are shown it, and an
    approver's own request is approved by them (INVITE_SELF_APPROVE)."""
    service = deps.service
    if request.status is Status.INVITING:  # an approved domain (INVITE_POLICY)
        invite_approved(deps, request)
        return
    service.autofill(request)  # names awork suggests for the address
    deps.courier.sync(request.id)  # the approval message and the "waiting" notice
    # A workflow run's requester is an input, not a person who just asked: never their approval.
    own = request.step is None and requester in service.approvers_of(request)
    if deps.settings.invite_self_approve and own:
        # An approver's own request needs no one else (but an admin role still needs two).
        run_approval(deps, request.id, requester, origin, own_allowed=True)


def after_batches(
    deps: Deps, batches: list[InviteBatch], requester: str, origin: str | None
) -> None:
    """After the ack of stored batches: one approved by the policy runs at once; the others
    are shown to their approvers (and approved by an approver who asked, with
    INVITE_SELF_APPROVE)."""
    for batch in batches:
        if batch.status is BatchStatus.RUNNING:  # approved domains (INVITE_POLICY)
            deps.courier.run_batch(batch.id, batch.claim_id)
            continue
        deps.courier.sync_batch(batch.id)
        if deps.settings.invite_self_approve and requester in deps.service.approvers_of(batch):
            run_batch_approval(deps, batch.id, requester, origin, own_allowed=True)


def _request_id(body: dict) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def _channel(body: dict) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
