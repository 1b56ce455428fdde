"""Text hygiene's promise that mutation testing found unchecked (docs/mutation.md)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.domain.details import InviteDetails


def test_a_multi_line_field_of_the_wrong_type_is_a_validation_error():
    """A number in a multi-line field (an import line of the wrong shape) is invalid, not a crash."""
    with pytest.raises(ValidationError):
        InviteDetails.model_validate({"email": "a@example.com", "note": 5})
