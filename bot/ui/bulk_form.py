"""The bulk form (`/invite bulk`): a list typed in or a CSV file, one role and teams for
everyone. Pure function."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.batches import BATCH_LIMIT
from bot.ui.forms import input_block
from bot.ui.mrkdwn import option, plain

BULK_FORM = "bulk_invite_form"
PEOPLE = "people"
PEOPLE_FILE = "people_file"


def bulk_form(origin_channel: str | None) -> dict[str, Any]:
    """`/invite bulk`: a list typed in (up to Slack's 3,000 characters) or a CSV file."""
    return {
        "type": "modal",
        "callback_id": BULK_FORM,
        "title": plain("Invite many to awork", 24),
        "submit": plain("Ask for approval", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"channel": origin_channel}),
        "blocks": [
            input_block(
                PEOPLE,
                "People, one per line",
                {
                    "type": "plain_text_input",
                    "multiline": True,
                    "max_length": 3000,
                    "placeholder": plain("ada@example.com, Ada, Lovelace"),
                },
                hint="email[, first name, last name] - or attach a CSV file below.",
            ),
            input_block(
                PEOPLE_FILE,
                f"…or a CSV file (up to {BATCH_LIMIT} lines)",
                {"type": "file_input", "filetypes": ["csv", "txt"], "max_files": 1},
            ),
            input_block(
                "roleId",
                "Role for everyone",
                {
                    "type": "external_select",
                    "min_query_length": 0,
                    "placeholder": plain("Type to search awork roles"),
                },
            ),
            input_block(
                "teamIds",
                "Teams for everyone",
                {
                    "type": "multi_external_select",
                    "min_query_length": 0,
                    "placeholder": plain("Type to search awork teams"),
                },
            ),
            input_block(
                "skipSendingEmail",
                "Welcome email",
                {
                    "type": "checkboxes",
                    "options": [option("true", "Don't send awork's welcome email")],
                },
            ),
        ],
    }
