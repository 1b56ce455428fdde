"""The shape of the Slack ids that the configuration and the policy file name: a letter for the
kind (C… a channel, U… or W… a member, S… a user group) and at least two more capitals or
digits. A name (#approvals, @olga) is not one: Slack's API takes ids."""

from __future__ import annotations

import re

_ID = re.compile(r"^[A-Z][A-Z0-9]{2,}$")


def is_slack_id(value: str, kinds: str) -> bool:
    """Whether `value` is an id of one of `kinds` (their first letters, e.g. "CG")."""
    return bool(_ID.match(value)) and value[0] in kinds
