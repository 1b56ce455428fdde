"""Who decides a request: the approval rule, apart from the store and from Slack.

An ordinary request is decided by one approval. awork's admin role asks for two distinct
approvers - but only when a second one can give it: the second approval is required only
while another *eligible* approver exists, that is a current approver who is neither the
requester (nobody approves their own request while someone else can) nor the first approver.
Otherwise the one approval decides it, and the rule says why (`ApprovalRule.ALONE_*`), so a
request never waits for an approval nobody may give.

The rule is applied when an approval is given, against the approvers of that moment (user
groups change): an approval given by someone who is no longer an approver does not count
towards the two, and is dropped when the next one is stored. The caller stores the outcome
by compare-and-set on `approvals`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.domain.records import ApprovalRule, Decidable

OWN_REQUEST = "own_request"  # another approver exists to decide it
ALREADY_APPROVED = "already_approved"  # this approver's approval is in; another is needed


@dataclass(frozen=True)
class Verdict:
    """What one approver's click comes to: a refusal, or the approvals to store and whether
    they decide the request (`complete`), under `rule`."""

    refusal: str | None = None
    approvals: tuple[str, ...] = ()
    complete: bool = False
    rule: ApprovalRule | None = None


def eligible(record: Decidable, approvers: Iterable[str], given: Sequence[str]) -> set[str]:
    """Approvers who could still give an approval: not the requester, not one already given."""
    return set(approvers) - {record.requester_id} - set(given)


def decide(
    record: Decidable, approver: str, approvers: Iterable[str], own_allowed: bool = False
) -> Verdict:
    """Apply the rule to `approver` approving `record` (pending) now. `own_allowed`: the
    requester's own approval counts (INVITE_SELF_APPROVE) even when others could decide.
    `approver` is known to be an approver."""
    approvers = frozenset(approvers)
    # Only approvals of current approvers count: one who was removed since gave none.
    given = tuple(a for a in record.approvals if a in approvers)
    two = record.approvals_needed >= 2
    if approver in given:
        # Asked again: it decides alone now if nobody else is left who could (an approver
        # who left a user group since the first approval).
        if two and len(given) == 1 and not eligible(record, approvers, given):
            return Verdict(approvals=given, complete=True, rule=_alone(record, approvers, given))
        return Verdict(refusal=ALREADY_APPROVED)
    others = approvers - {record.requester_id}
    if approver == record.requester_id and others and not own_allowed:
        return Verdict(refusal=OWN_REQUEST)
    approvals = (*given, approver)
    if not two:
        return Verdict(approvals=approvals, complete=True, rule=ApprovalRule.ONE)
    if len(approvals) >= 2:
        return Verdict(approvals=approvals, complete=True, rule=ApprovalRule.TWO)
    if eligible(record, approvers, approvals):
        return Verdict(approvals=approvals, complete=False, rule=ApprovalRule.TWO)
    return Verdict(approvals=approvals, complete=True, rule=_alone(record, approvers, approvals))


def _alone(record: Decidable, approvers: frozenset[str], given: Sequence[str]) -> ApprovalRule:
    """Why one approval decides: the requester is the only other approver, or there is none."""
    if record.requester_id in approvers and record.requester_id not in given:
        return ApprovalRule.ALONE_REQUESTER
    return ApprovalRule.ALONE_NO_OTHER
