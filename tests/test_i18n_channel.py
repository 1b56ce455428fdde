"""The approval messages of a request and of a batch, in every state, and the batch's notices
come from the catalog: under a fake catalog that marks every text, nothing visible is left
unmarked but what people typed and awork's own words; and German reads differently."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.awork.errors import AworkError, AworkUnavailable
from bot.domain.awork_models import InvitationResult, Workspace
from bot.domain.batches import BatchStatus, InviteBatch, Skipped, Summary
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.records import ApprovalRule, Failure, InviteRequest, Status, WorkflowStep
from bot.i18n import speaking
from bot.services.failures import describe_failure
from bot.ui import approval, bulk_blocks, bulk_notices
from tests.i18n_fake import marked, unmarked_texts

REQUESTER, APPROVER, OTHER, INVITEE = "UREQ", "UAPP", "UOTHER", "UADA"
TEAMS = [f"Team {i}" for i in range(25)]
# What people typed and awork's own names and words: shown as they are, never translated.
TYPED = [
    "ada@example.com",
    "Ada Lovelace",
    "Dr.",
    "Engineer",
    "Admin <b>",
    *TEAMS,
    "Please <!channel> welcome her",
    "line two",
    "Not a good time",
    "The invitation code is not valid.",
    "Acme Workspace",
    "connect-code",
    "approved_domains",
    "example.com",
    "sales",
]
CODE = InvitationResult.model_validate({"invitationCode": "SECRET"})
LOST = InvitationResult.model_validate({})  # found in awork after its answer was lost


def request(**changes) -> InviteRequest:
    base = InviteRequest(
        id="inv-1",
        requester_id=REQUESTER,
        origin_channel="CGEN",
        role_name="Admin <b>",
        team_names=TEAMS,
        details=InviteDetails(
            email="ada@example.com",
            first_name="Ada",
            last_name="Lovelace",
            title="Dr.",
            position="Engineer",
            gender="female",
            note="Please <!channel> welcome her\nline two",
            skip_sending_email=True,
            booked_seats=3,
            connect_invite_code="connect-code",
        ),
    )
    return base.model_copy(update=changes)


def failure(retryable: bool) -> Failure:
    if retryable:
        return describe_failure(AworkUnavailable("timeout", "no answer"), "a@x.com")
    return describe_failure(AworkError("already-exist-error", "exists", status=400), "a@x.com")


def requests() -> list[InviteRequest]:
    """A request in every state (and every way its link went) the message can show."""
    approved = {"decided_by": APPROVER, "approvals": [APPROVER], "decided_at": utcnow()}
    overdue = utcnow() - timedelta(hours=1)
    return [
        request(),
        request(role_name=None, team_names=[]),
        request(details=InviteDetails(email="ada@example.com", new_workspace=True, booked_seats=1)),
        request(
            details=InviteDetails(
                email="ada@example.com",
                new_workspace=True,
                plan_id="business",
                booked_seats=2,
                connect_invite_code="connect-code",
            )
        ),
        request(step=WorkflowStep(execution_id="Fx1")),
        request(approvals_needed=2),
        request(approvals_needed=2, approvals=[APPROVER]),
        request(policy_rule="sales", route="sales"),
        request(policy_rule="example.com"),
        request(status=Status.INVITING, **approved),
        request(status=Status.INVITING, unsure_since=utcnow(), **approved),
        request(
            status=Status.INVITED,
            link_sent_to=INVITEE,
            invitee_slack_id=INVITEE,
            result=CODE,
            **approved,
        ),
        request(status=Status.INVITED, link_sent_to=REQUESTER, result=CODE, **approved),
        request(status=Status.INVITED, result=CODE, **approved),
        request(status=Status.INVITED, result=CODE, awork_email_skipped=True, **approved),
        request(status=Status.INVITED, result=LOST, **approved),
        request(status=Status.INVITED, result=LOST, awork_email_skipped=True, **approved),
        request(status=Status.INVITED, invitee_slack_id=INVITEE, result=CODE, **approved),
        request(
            status=Status.INVITED,
            invitee_slack_id=INVITEE,
            result=CODE,
            link_overdue_at=overdue,
            **approved,
        ),
        request(
            status=Status.INVITED,
            invitee_slack_id=INVITEE,
            result=CODE,
            link_overdue_at=overdue,
            awork_email_skipped=True,
            **approved,
        ),
        request(status=Status.JOINED, invitee_slack_id=INVITEE, result=CODE, **approved),
        request(status=Status.JOINED, result=CODE, joined_at=utcnow(), **approved),
        request(
            status=Status.LAPSED,
            result=CODE,
            lapse_reason="The invitation's 24 hours are over.",
            **approved,
        ),
        request(
            status=Status.LAPSED,
            result=CODE,
            lapse_reason="The invitation code is not valid.",
            **approved,
        ),
        request(status=Status.DENIED, decided_by=APPROVER, deny_reason="Not a good time"),
        request(status=Status.DENIED, deny_reason="Not a good time"),
        request(status=Status.EXPIRED),
        request(status=Status.FAILED, failure=failure(True), **approved),
        request(status=Status.FAILED, failure=failure(False), **approved),
        request(
            status=Status.INVITED,
            result=CODE.model_copy(update={"workspace": Workspace(name="Acme Workspace")}),
            approvals_needed=2,
            approvals=[APPROVER, OTHER],
            approval_rule=ApprovalRule.TWO,
            decided_by=OTHER,
        ),
        request(
            status=Status.INVITED,
            result=CODE,
            approvals_needed=2,
            approval_rule=ApprovalRule.ALONE_REQUESTER,
            **approved,
        ),
        request(
            status=Status.INVITED,
            result=CODE,
            approvals_needed=2,
            approval_rule=ApprovalRule.ALONE_NO_OTHER,
            **approved,
        ),
        request(
            status=Status.INVITED,
            result=CODE,
            approval_rule=ApprovalRule.POLICY,
            policy_rule="approved_domains",
        ),
    ]


def batch(count: int = 12, **changes) -> InviteBatch:
    entries = [
        InviteDetails(email=f"p{i}@example.com", first_name="Ada" if i == 0 else None)
        for i in range(count)
    ]
    skipped = [
        Skipped(email=f"s{i}-{reason}@example.com", reason=reason)
        for reason in ("member", "open", "repeated", "blocked", "daily_limit")
        for i in range(12)
    ]
    base = InviteBatch(
        id="bat-1",
        requester_id=REQUESTER,
        origin_channel="CGEN",
        role_name="Admin <b>",
        team_names=TEAMS,
        entries=[entries[0].model_copy(update={"skip_sending_email": True}), *entries[1:]],
        skipped=skipped,
    )
    return base.model_copy(update=changes)


def member(email: str, **changes) -> InviteRequest:
    base = InviteRequest(
        requester_id=REQUESTER,
        status=Status.INVITED,
        details=InviteDetails(email=email),
        link_attempted=True,
        result=CODE,
    )
    return base.model_copy(update=changes)


def summary() -> Summary:
    """Everything a summary can say: people in Slack, links to the requester, links withheld,
    answers lost, DMs overdue, members already, and more reasons to fail than are shown."""
    overdue = utcnow() - timedelta(hours=1)
    invited = [
        member("in-slack@example.com", invitee_slack_id=INVITEE),
        member("link@example.com", link_sent_to=REQUESTER),
        member("withheld@example.com"),
        member("lost@example.com", result=LOST),
        *(
            member(
                f"late{i}@example.com", invitee_slack_id=f"UL{i}", link_attempted=False
            ).model_copy(update={"link_overdue_at": overdue})
            for i in range(12)
        ),
    ]
    failed = [
        member(
            f"f{i}@example.com",
            status=Status.FAILED,
            failure=Failure(code="x", message=f"awork says no {i}"),
        )
        for i in range(12)
    ] + [member(f"r{i}@example.com", status=Status.FAILED, failure=failure(True)) for i in range(7)]
    return Summary(
        invited=invited,
        already=[f"a{i}@example.com" for i in range(12)],
        failed=failed,
        waiting=2,
    )


AWORK_SAYS = [f"awork says no {i}" for i in range(12)]
EMAILS = [
    *(f"{who}{i}@example.com" for who in ("p", "f", "r", "a", "late") for i in range(20)),
    *(f"s{i}-{why}@example.com" for why in ("member", "open", "repeated") for i in range(12)),
    *(f"s{i}-{why}@example.com" for why in ("blocked", "daily_limit") for i in range(12)),
    "in-slack@example.com",
    "link@example.com",
    "withheld@example.com",
    "lost@example.com",
    "x@example.com",
]
BATCH_TYPED = [*TYPED, *EMAILS, "Ada · p0@example.com", *AWORK_SAYS]


def batch_payloads() -> list:
    """The batch's message in every state, its buttons and its notices to the requester."""
    approved = {"decided_by": APPROVER, "approvals": [APPROVER], "run": 1}
    done = batch(status=BatchStatus.DONE, **approved)
    payloads: list = []
    for one in (
        batch(),
        batch(1),
        batch(approvals_needed=2),
        batch(policy_rule="sales", route="sales"),
        batch(status=BatchStatus.RUNNING, **approved),
        batch(status=BatchStatus.RUNNING, unsure=1, **approved),
        batch(status=BatchStatus.RUNNING, unsure=3, **approved),
        batch(status=BatchStatus.RUNNING, **{**approved, "run": 2}, retrying=5),
        batch(status=BatchStatus.RUNNING, **{**approved, "run": 3}, retrying=5, unsure=2),
        batch(status=BatchStatus.DENIED, decided_by=APPROVER, deny_reason="Not a good time"),
        batch(status=BatchStatus.EXPIRED),
        done,
        batch(status=BatchStatus.DONE, **{**approved, "run": 2}),
    ):
        text, blocks = bulk_blocks.batch_approval_message(one, summary())
        payloads += [{"text": text}, blocks]
        payloads.append(
            bulk_blocks.batch_approval_message(one, Summary(invited=[member("x@example.com")]))[1]
        )
        payloads.append({"text": bulk_notices.batch_waiting_notice(one)})
        payloads.append({"text": bulk_notices.batch_outcome_notice(one, summary())})
        payloads.append({"text": bulk_notices.batch_reminder(one)})
        payloads.append({"text": bulk_notices.batch_already_decided(one)})
        payloads.append({"text": bulk_notices.batch_refusal(one, "already_retried")})
    payloads.append(
        {"text": bulk_notices.batch_links(done, [("p1@example.com", "https://x/accept")], 1, 2)}
    )
    payloads.append(
        {"text": bulk_notices.batch_links(done, [("p1@example.com", "https://x/a")] * 2, 2, 2)}
    )
    return payloads


def test_every_request_state_bypasses_nothing():
    """The approval message of a request, in every state, is marked text but for typed values."""
    with marked():
        for one in requests():
            text, blocks = approval.approval_message(one)
            assert unmarked_texts({"text": text}, TYPED) == [], one.status
            assert unmarked_texts(blocks, TYPED) == [], one.status


def test_a_batch_and_its_notices_bypass_nothing():
    """A batch's message in every state, its progress, summary and notices are marked text."""
    with marked():
        payloads = batch_payloads()
    for payload in payloads:
        assert unmarked_texts(payload, BATCH_TYPED) == []


def test_stored_reasons_are_said_in_the_readers_language():
    """A failure and a lapse reason are stored in English and translated where shown; awork's
    own words in them are not."""
    refused = failure(False)
    assert refused.message == "a@x.com is already in the awork workspace."
    with marked():
        assert refused.said() == "«a@x.com is already in the awork workspace.»"
    old = Failure(code="x", message="awork refused the invitation (x) {odd}")  # stored before
    assert old.said() == "awork refused the invitation (x) {odd}"


def test_a_left_out_reason_and_the_default_role_are_words_of_the_catalog():
    """A batch without a role says "awork's default role"; its left-out reasons are marked."""
    _text, blocks = bulk_blocks.batch_approval_message(batch(role_name=None))
    assert any("*Role:* awork's default role" in str(b) for b in blocks)
    _text, blocks = approval.approval_message(request(role_name=None))
    assert any("*Role:* awork's default role" in str(b) for b in blocks)
    assert not any("awork default" in str(b).replace("awork default role", "") for b in blocks)


@pytest.mark.parametrize(
    "build",
    [
        lambda: approval.approval_message(request()),
        lambda: approval.approval_message(
            request(status=Status.FAILED, failure=failure(True), decided_by=APPROVER)
        ),
        lambda: bulk_blocks.batch_approval_message(batch()),
        lambda: bulk_blocks.batch_approval_message(
            batch(status=BatchStatus.DONE, decided_by=APPROVER, run=1), summary()
        ),
    ],
)
def test_german_reads_differently(build):
    """The same message in German and in English differs (the real catalog: German merged)."""
    with speaking("en"):
        english = build()
    with speaking("de"):
        german = build()
    assert german[0] != english[0]
    assert german[1] != english[1]
    buttons = [
        e["text"]["text"] for b in german[1] if b["type"] == "actions" for e in b["elements"]
    ]
    assert "Approve" not in buttons and "Deny" not in buttons and "Try again" not in buttons
