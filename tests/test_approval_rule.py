"""Issue 11 part 10: no undecidable requests. awork's admin role needs a second approval only
while another eligible approver (not the requester, not the first approver) exists; the
approval message says which rule applied."""

from __future__ import annotations

import json

import pytest

from bot.domain import approval
from bot.domain.batches import BatchStatus
from bot.domain.details import InviteDetails
from bot.domain.records import ApprovalRule, InviteRequest, Status
from bot.services.decisions import Refusal
from bot.store import SqliteStore
from bot.ui import bulk_blocks
from bot.ui.approval import approval_message
from tests.conftest import APPROVERS
from tests.fakes.awork import ROLE_ADMIN
from tests.fakes.services import in_process_service
from tests.test_bulk_scenarios import ask_inline, posted_emails, wait_batch
from tests.test_scenarios import settle, submit, wait_status

A, B = APPROVERS
ALONE_WORDS = (
    f"Admin role: approved by <@{B}> alone, because no other approver can decide "
    "(the requester cannot approve their own request)"
)


def admin_request(requester: str, approvals: tuple[str, ...] = ()) -> InviteRequest:
    return InviteRequest(
        id="inv-1",
        requester_id=requester,
        details=InviteDetails(email="boss@example.com", role_id=ROLE_ADMIN),
        role_name="Admin",
        role_is_admin=True,
        approvals_needed=2,
        approvals=list(approvals),
    )


def shown(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


# --- the rule --------------------------------------------------------------------------------


def test_two_approvers_one_requesting_the_other_decides_alone():
    """A,B with A requesting: B's approval suffices (the requester cannot approve), A is refused."""
    request = admin_request(A)
    verdict = approval.decide(request, B, {A, B})
    assert verdict.complete and verdict.rule is ApprovalRule.ALONE_REQUESTER
    assert verdict.approvals == (B,)
    assert approval.decide(request, A, {A, B}).refusal == approval.OWN_REQUEST


def test_three_approvers_one_requesting_need_the_other_two():
    """A,B,C with A requesting: B's approval waits for C's, B again is refused, C decides."""
    first = approval.decide(admin_request(A), B, {A, B, "C"})
    assert not first.complete and first.rule is ApprovalRule.TWO and first.approvals == (B,)
    after_b = admin_request(A, first.approvals)
    assert approval.decide(after_b, B, {A, B, "C"}).refusal == approval.ALREADY_APPROVED
    assert approval.decide(after_b, A, {A, B, "C"}).refusal == approval.OWN_REQUEST
    second = approval.decide(after_b, "C", {A, B, "C"})
    assert second.complete and second.rule is ApprovalRule.TWO and second.approvals == (B, "C")


def test_requester_who_is_no_approver_needs_two_of_the_approvers():
    """A,B with someone else requesting: A's approval waits, B's completes it."""
    first = approval.decide(admin_request("UREQ"), A, {A, B})
    assert not first.complete and first.rule is ApprovalRule.TWO
    second = approval.decide(admin_request("UREQ", first.approvals), B, {A, B})
    assert second.complete and second.rule is ApprovalRule.TWO


def test_a_lone_approver_decides_an_admin_role_alone():
    """One approver and someone else requesting: one approval, because nobody else exists."""
    verdict = approval.decide(admin_request("UREQ"), A, {A})
    assert verdict.complete and verdict.rule is ApprovalRule.ALONE_NO_OTHER


def test_self_approval_counts_as_the_first_of_two_when_another_can_give_the_second():
    """INVITE_SELF_APPROVE (own_allowed): A's own approval waits for B; A alone decides alone."""
    waits = approval.decide(admin_request(A), A, {A, B}, own_allowed=True)
    assert not waits.complete and waits.approvals == (A,)
    alone = approval.decide(admin_request(A), A, {A}, own_allowed=True)
    assert alone.complete and alone.rule is ApprovalRule.ALONE_NO_OTHER


def test_a_second_approver_who_left_lets_the_first_decide_alone():
    """B approved while C could give the second; C left the approvers: B's click decides."""
    after_b = admin_request(A, (B,))
    assert approval.decide(after_b, B, {A, B, "C"}).refusal == approval.ALREADY_APPROVED
    verdict = approval.decide(after_b, B, {A, B})
    assert verdict.complete and verdict.approvals == (B,)
    assert verdict.rule is ApprovalRule.ALONE_REQUESTER


def test_a_first_approval_by_an_approver_who_was_removed_does_not_count():
    """C approved first and was removed from the approvers: B's approval is the first of two."""
    after_c = admin_request("UREQ", ("C",))
    verdict = approval.decide(after_c, B, {A, B})
    assert not verdict.complete and verdict.approvals == (B,)
    decided = approval.decide(admin_request("UREQ", verdict.approvals), A, {A, B})
    assert decided.complete and decided.approvals == (B, A)
    assert decided.rule is ApprovalRule.TWO


def test_service_drops_the_removed_approvers_first_approval(service):
    """Through the service: C's approval stops counting once C leaves; B and A decide it."""
    request = service.submit(
        InviteDetails(email="boss@example.com", role_id=ROLE_ADMIN), "U0", None
    )
    service.current["approvers"] = frozenset({A, B, "C"})
    assert service.approve(request.id, "C").request.status is Status.PENDING
    service.current["approvers"] = frozenset({A, B})
    first = service.approve(request.id, B)
    assert first.ok and first.request.status is Status.PENDING
    assert first.request.approvals == [B]
    decided = service.approve(request.id, A)
    assert decided.request.status is Status.INVITING and decided.request.approvals == [B, A]


def test_an_ordinary_role_is_decided_by_one_approval():
    """Not an admin role: the first approval decides, under the one-approval rule."""
    request = InviteRequest(requester_id="UREQ", details=InviteDetails(email="x@example.com"))
    verdict = approval.decide(request, A, {A, B})
    assert verdict.complete and verdict.rule is ApprovalRule.ONE


# --- what the message says -------------------------------------------------------------------


def test_the_approval_message_says_which_rule_applied():
    """Waiting for a second approval, two given, or one alone and why; nothing for a denial."""
    waiting = admin_request("UREQ", (A,)).model_copy(update={"approval_rule": ApprovalRule.TWO})
    text = shown(approval_message(waiting)[1])
    assert (
        f"Admin role: a second approval is needed (1 of 2 approvals) — <@{A}> approved, "
        "waiting for one more approver"
    ) in text
    both = waiting.model_copy(
        update={"status": Status.INVITING, "approvals": [A, B], "decided_by": B}
    )
    assert f"approved by <@{A}> and <@{B}> (two approvals)" in shown(approval_message(both)[1])
    alone = admin_request(A, (B,)).model_copy(
        update={
            "status": Status.INVITING,
            "decided_by": B,
            "approval_rule": ApprovalRule.ALONE_REQUESTER,
        }
    )
    assert ALONE_WORDS in shown(approval_message(alone)[1])
    only = alone.model_copy(update={"approval_rule": ApprovalRule.ALONE_NO_OTHER})
    assert "alone, because there is no other approver" in shown(approval_message(only)[1])
    denied = waiting.model_copy(update={"status": Status.DENIED, "decided_by": B})
    assert "Admin role" not in shown(approval_message(denied)[1])


# --- in the service, with the store ------------------------------------------------------------


@pytest.fixture
def service(tmp_path):
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    current = {"approvers": frozenset({A, B, "C"})}
    service = in_process_service(store, lambda: current["approvers"], instance_id="me")
    service.current = current  # type: ignore[attr-defined]  # the test changes the approvers
    yield service
    store.close()


def test_service_decides_the_rule_at_approval_time_against_the_approvers_of_then(service):
    """Submitted with A,B,C: B waits for C; C leaves the group; B's click then claims it alone."""
    request = service.submit(InviteDetails(email="boss@example.com", role_id=ROLE_ADMIN), A, None)
    assert request.approvals_needed == 2
    first = service.approve(request.id, B)
    assert first.ok and first.request.status is Status.PENDING
    assert first.request.approval_rule is ApprovalRule.TWO
    assert service.approve(request.id, A).refusal is Refusal.OWN_REQUEST
    assert service.approve(request.id, B).refusal is Refusal.ALREADY_APPROVED
    service.current["approvers"] = frozenset({A, B})
    decided = service.approve(request.id, B)
    assert decided.ok and decided.request.status is Status.INVITING
    assert decided.request.approvals == [B] and decided.request.decided_by == B
    assert decided.request.approval_rule is ApprovalRule.ALONE_REQUESTER
    assert service.approve(request.id, B).refusal is Refusal.ALREADY_DECIDED


def test_an_admin_role_asks_for_two_even_with_a_single_approver_at_submission(service):
    """approvals_needed is 2 for the admin role whoever approves then; a second approver
    added before the first approval is waited for."""
    service.current["approvers"] = frozenset({A})
    request = service.submit(InviteDetails(email="boss@example.com", role_id=ROLE_ADMIN), "U", None)
    assert request.approvals_needed == 2
    service.current["approvers"] = frozenset({A, B})
    assert service.approve(request.id, A).request.status is Status.PENDING


# --- end to end ----------------------------------------------------------------------------------


def test_admin_role_asked_by_one_of_two_approvers_is_decided_by_the_other(
    driver, slack, bot, awork
):
    """INVITE_APPROVERS=A,B, A asks for the admin role: A is refused, B's approval alone
    invites (exactly one POST /invitations), and the message says why one was enough."""
    request_id = submit(driver, slack, {"email": "boss@example.com", "roleId": ROLE_ADMIN}, user=A)
    posted = shown(slack.of("chat.postMessage")[0].args["blocks"])
    assert "Admin role: two approvals are needed (0 of 2)" in posted
    driver.click("approve_invite", request_id, A)
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: c.args["user"] == A and "your own request" in c.args["text"],
    )
    assert bot.store.get(request_id).status is Status.PENDING
    driver.click("approve_invite", request_id, B)
    request = wait_status(bot, request_id, Status.INVITED)
    assert request.approvals == [B] and request.decided_by == B
    assert request.approval_rule is ApprovalRule.ALONE_REQUESTER
    assert len(awork.calls("POST", "/invitations")) == 1
    settle(bot, request_id)
    assert ALONE_WORDS in shown(slack.of("chat.update")[-1].args["blocks"])
    assert [e.detail.get("rule") for e in bot.store.audit() if e.event == "approved"] == [
        "alone_requester"
    ]


def test_admin_role_batch_asked_by_one_of_two_approvers_is_decided_by_the_other(
    driver, slack, bot, awork
):
    """A batch into the admin role asked by A: B's approval alone runs it, and its message says so."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com role:admin", user=A)
    driver.click("approve_invite", batch_id, A)
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: c.args["user"] == A and "your own request" in c.args["text"],
    )
    driver.click("approve_invite", batch_id, B)
    batch = wait_batch(bot, batch_id, BatchStatus.DONE)
    assert batch.approval_rule is ApprovalRule.ALONE_REQUESTER and batch.approvals == [B]
    assert posted_emails(awork) == ["a@x.com", "b@x.com"]
    _, message = bulk_blocks.batch_approval_message(batch, bot.deps.batches.summary(batch))
    assert ALONE_WORDS in shown(message)
    assert ALONE_WORDS in shown(slack.of("chat.update")[-1].args["blocks"])
