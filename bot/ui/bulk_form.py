"""The bulk form (`/invite bulk`): a list typed in or a CSV file, one role and teams for
everyone. Pure function."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.batches import BATCH_LIMIT
from bot.i18n import _, ngettext
from bot.ui.forms import input_block, role_input, skip_email_input, teams_input
from bot.ui.mrkdwn import plain

BULK_FORM = "bulk_invite_form"
PEOPLE = "people"
PEOPLE_FILE = "people_file"


def bulk_form(origin_channel: str | None) -> dict[str, Any]:
    """`/invite bulk`: a list typed in (up to Slack's 3,000 characters) or a CSV file."""
    return {
        "type": "modal",
        "callback_id": BULK_FORM,
        "title": plain(_("Invite many to awork"), 24),
        "submit": plain(_("Ask for approval"), 24),
        "close": plain(_("Cancel"), 24),
        "private_metadata": json.dumps({"channel": origin_channel}),
        "blocks": [
            input_block(
                PEOPLE,
                _("People, one per line"),
                {
                    "type": "plain_text_input",
                    "multiline": True,
                    "max_length": 3000,
                    "placeholder": plain(_("ada@example.com, Ada, Lovelace")),
                },
                hint=_("email[, first name, last name] — or attach a CSV file below."),
            ),
            input_block(
                PEOPLE_FILE,
                ngettext(
                    "…or a CSV file (up to {n} line)",
                    "…or a CSV file (up to {n} lines)",
                    BATCH_LIMIT,
                ),
                {"type": "file_input", "filetypes": ["csv", "txt"], "max_files": 1},
            ),
            role_input("roleId", _("Role for everyone")),
            teams_input("teamIds", _("Teams for everyone")),
            skip_email_input(),
        ],
    }
