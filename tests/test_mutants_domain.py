"""The approval rule's and text hygiene's promises that mutation testing found unchecked
(docs/mutation.md)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.domain import approval
from bot.domain.details import InviteDetails
from bot.domain.records import ApprovalRule, InviteRequest


def test_one_approval_decides_an_ordinary_request_and_is_the_one_stored():
    """An ordinary role: the approver's click completes it, with their approval to store."""
    request = InviteRequest(requester_id="UREQ", details=InviteDetails(email="a@example.com"))
    verdict = approval.decide(request, "UA", {"UA", "UB"})
    assert verdict == approval.Verdict(approvals=("UA",), complete=True, rule=ApprovalRule.ONE)


@pytest.mark.parametrize("field", ["note", "firstName"])
def test_a_free_text_field_of_the_wrong_type_is_a_validation_error(field):
    """A number in a free-text field (an import line of the wrong shape) is invalid, not a crash."""
    with pytest.raises(ValidationError):
        InviteDetails.model_validate({"email": "a@example.com", field: 5})
