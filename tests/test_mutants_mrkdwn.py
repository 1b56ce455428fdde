"""The mrkdwn helpers' promises that mutation testing found unchecked (docs/mutation.md):
Slack's limits, long text split and never cut, counts and fallbacks that read right."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest
from bot.ui import mrkdwn
from bot.ui.mrkdwn import TEXT_MAX, pieces, sections


def test_blocks_have_the_block_kit_shape():
    """A section and a context carry their text as a mrkdwn text object, as Block Kit reads it."""
    text = {"type": "mrkdwn", "text": "*hi*"}
    assert mrkdwn.section("*hi*") == {"type": "section", "text": text}
    assert mrkdwn.context("*hi*") == {"type": "context", "elements": [text]}
    assert mrkdwn.plain("Hi") == {"type": "plain_text", "text": "Hi", "emoji": True}


def test_plain_text_and_options_stay_within_slacks_limits():
    """Plain text is cut at 150 characters, an option's text at 75 and its value at 150."""
    assert mrkdwn.plain("x" * 200)["text"] == "x" * 150
    option = mrkdwn.option("v" * 200, "t" * 100)
    assert option["text"]["text"] == "t" * 75 and option["value"] == "v" * 150


def test_short_lines_share_one_section():
    """Lines that fit together are one section, joined by line breaks, with nothing added."""
    assert sections(["a", "b"]) == [mrkdwn.section("a\nb")]


def test_lines_that_fill_a_section_exactly_stay_together():
    """Two lines of 3,000 characters with their line break are one section; one more is two."""
    fits = ["a" * 1500, "b" * (TEXT_MAX - 1501)]
    assert sections(fits) == [mrkdwn.section("\n".join(fits))]
    over = ["a" * 1500, "b" * 1500]
    assert sections(over) == [mrkdwn.section(over[0]), mrkdwn.section(over[1])]


@pytest.mark.parametrize(
    ("line", "limit", "parts"),
    [
        ("x" * 12, 12, ["x" * 12]),
        ("aaaaa b c ddd eeeeee", 12, ["aaaaa b c", "ddd eeeeee"]),
        ("aaaa " + "b" * 20, 12, ["aaaa bbbbbbb", "b" * 12, "b"]),
        ("x &amp; bbbbbbbb", 12, ["x &amp;", "bbbbbbbb"]),
        ("x <@U1> bbbbbbbb", 12, ["x <@U1>", "bbbbbbbb"]),
        ("&amp;xx&lt;yyyy", 9, ["&amp;xx", "&lt;yyyy"]),
        ("<@U1>x<@U2>", 8, ["<@U1>x", "<@U2>"]),
        ("ab<@U12>cd<@U3>", 6, ["ab", "<@U12>", "cd", "<@U3>"]),
        ("a&amp;c", 5, ["a", "&amp;", "c"]),
        ("a<@U1>c", 5, ["a", "<@U1>", "c"]),
    ],
)
def test_a_long_line_is_cut_at_its_last_space_and_never_inside_an_entity_or_mention(
    line, limit, parts
):
    """Parts are as long as fits, cut at a late space, never inside an entity or a `<…>`."""
    assert pieces(line, limit) == parts


@pytest.mark.timeout(10)
@pytest.mark.parametrize("line", ["&amp;x", "<@U1>xx"])
def test_an_entity_longer_than_the_limit_at_a_parts_start_is_cut_all_the_same(line):
    """Nothing can go before it, so it is cut at the limit: every part has text and it ends."""
    parts = pieces(line, 3)
    assert all(parts) and "".join(parts) == line


def test_shortened_names_say_how_many_more_only_when_there_are_more():
    """The names are followed by "and N more" only when some were left out."""
    assert mrkdwn.shortened(["Ann", "Bo"], 2) == "Ann, Bo"
    assert mrkdwn.shortened(["Ann", "Bo", "<Cy>"], 2) == "Ann, Bo and 1 more"
    assert mrkdwn.shortened(["<Cy>"], 2) == "&lt;Cy&gt;"


def test_fitted_keeps_the_marker_and_the_limit():
    """A name that fits exactly is whole; a longer one is cut with "…"; never over the limit."""
    assert mrkdwn.fitted("Admin", " (x)", 9) == "Admin (x)"
    assert mrkdwn.fitted("Admins", " (x)", 9) == "Admi… (x)"
    assert mrkdwn.fitted("Admin", " (admin)", 9) == "… (admin)"


def test_asked_in_says_nothing_for_a_dm_or_an_unknown_channel():
    """News by DM names the channel asked in; nothing when that was a DM or is not known."""
    assert mrkdwn.asked_in(None) == "" and mrkdwn.asked_in("D123") == ""
    assert mrkdwn.asked_in("C123") == "\nYou asked in <#C123>."


def test_approved_by_never_names_a_missing_user():
    """Without a decider on record it says "an approver", never `<@None>`."""
    record = InviteRequest(requester_id="U1", details=InviteDetails(email="a@example.com"))
    assert mrkdwn.approved_by(record) == "an approver"
    assert mrkdwn.approved_by(record.model_copy(update={"decided_by": "UB"})) == "<@UB>"


def test_slack_date_falls_back_to_the_time_in_utc():
    """A client that cannot show Slack's date token shows the date and time in UTC."""
    when = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert mrkdwn.slack_date(when) == (
        f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|2026-03-04 05:06 UTC>"
    )


SUFFIX = " (sandbox — no real invitation)"


def test_a_sandbox_message_says_so_in_its_text_and_first_block():
    """The text gets the sandbox suffix and the note comes first; the caller's dict is unchanged."""
    payload = {"text": "Invited", "blocks": [mrkdwn.section("a")]}
    labelled = mrkdwn.label_sandbox(payload)
    assert labelled == {
        "text": "Invited" + SUFFIX,
        "blocks": [mrkdwn.context(mrkdwn.SANDBOX_NOTE), mrkdwn.section("a")],
    }
    assert payload == {"text": "Invited", "blocks": [mrkdwn.section("a")]}
    assert mrkdwn.label_sandbox({}) == {"text": SUFFIX.strip()}
    assert mrkdwn.label_sandbox({"text": None}) == {"text": SUFFIX.strip()}


def test_a_sandbox_modal_gets_the_note_but_no_text_and_keeps_its_block_limit():
    """A payload of blocks only (a modal) gets no text, and stays within its block limit."""
    blocks = [mrkdwn.section(str(n)) for n in range(100)]
    modal = mrkdwn.label_sandbox({"type": "modal", "blocks": blocks}, block_limit=100)
    assert "text" not in modal and modal["type"] == "modal"
    assert modal["blocks"] == [mrkdwn.context(mrkdwn.SANDBOX_NOTE), *blocks[:99]]
    message = mrkdwn.label_sandbox({"text": "t", "blocks": blocks})
    assert len(message["blocks"]) == 50
    assert mrkdwn.label_sandbox({"text": "t", "blocks": None}) == {
        "text": "t" + SUFFIX,
        "blocks": None,
    }
