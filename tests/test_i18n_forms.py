"""The forms, their field errors and the errors of what people type go through the catalog:
under a fake catalog that wraps every msgid in «…» (tests/i18n_fake.py), no visible text is
left unwrapped - so German (or any language) reaches every one. And the wording fixes of issue
20: the welcome-email field says it skips, no choice is offered twice, the default role is
"awork's default role"."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bot.domain.awork_models import Role, Team
from bot.domain.details import PLANS, InviteDetails, field_label, parse_details
from bot.domain.inline import parse_inline, resolve
from bot.domain.people import parse_people
from bot.domain.records import InviteRequest
from bot.domain.steps import read_inputs
from bot.i18n import _, speaking
from bot.ui import bulk_form, forms, steps
from handlers import files, shortcuts
from tests.i18n_fake import marked, outside_marks, unmarked_texts, visible_texts
from tests.slack_requests import GENERAL

ROLES = [Role(id="r1", name="Admin", is_admin_role=True), Role(id="r2", name="Member")]
TEAMS = [Team(id="t1", name="Design"), Team(id="t2", name="Engineering")]
AWORK_NAMES = [*PLANS.values(), "Admin", "Member", "Design", "Engineering"]


def assert_marked(texts: list[str], allowed: list[str] = ()) -> None:
    """Each text has no letters outside «…» once `allowed` (typed, awork's) is taken out."""
    leaks = [t for t in texts if any(c.isalpha() for c in outside_marks(t, allowed))]
    assert leaks == []


def selects(view: dict) -> list[list[str]]:
    """The option texts of each select, radio group and checkbox group in a view."""
    found = []
    for block in view["blocks"]:
        element = block.get("element") or {}
        if "options" in element:
            found.append([o["text"]["text"] for o in element["options"]])
    return found


# --- everything visible is from the catalog ------------------------------------------------


@pytest.mark.parametrize("advanced", [False, True])
def test_the_invite_form_says_nothing_outside_the_catalog(advanced):
    """Title, buttons, labels, hints, placeholders and options of the form: all translated."""
    with marked(), speaking("de"):
        view = forms.invite_form(GENERAL, advanced=advanced)
    assert unmarked_texts(view, allowed=PLANS.values()) == []
    assert visible_texts(view)  # the walk found the texts


def test_the_bulk_form_and_the_deny_modal_say_nothing_outside_the_catalog():
    """The bulk form, and the deny-reason modal for a request and a batch."""
    request = InviteRequest(
        id="inv-1", requester_id="U1", details=InviteDetails(email="ada@example.com")
    )
    batch = SimpleNamespace(id="bat-1", entries=[1, 2, 3])
    with marked(), speaking("de"):
        views = [
            bulk_form.bulk_form(GENERAL),
            forms.deny_reason_modal(request),
            forms.deny_reason_modal(batch),
        ]
    for view in views:
        assert unmarked_texts(view, allowed=["ada@example.com"]) == []


def test_role_options_mark_an_admin_role_in_the_catalogs_words():
    """The role picker's " (admin)" is ours (translated); the role's name is awork's."""
    with marked():
        options = forms.role_options(ROLES)
    assert [o["text"]["text"] for o in options] == ["Admin« (admin)»", "Member"]


def test_field_errors_come_from_the_catalog():
    """Every kind of field error, and the cross-field ones, are translated."""
    cases = [
        {},
        {"email": "nope"},
        {"email": "a@x.com", "lastName": "x" * 101},
        {"email": "a@x.com", "teamIds": ["t"] * 101},
        {"email": "a@x.com", "bookedSeats": 0},
        {"email": "a@x.com", "gender": "robot"},
        {"email": "a@x.com", "password": "x"},
        {"email": "a@x.com", "planId": "business"},
        {"email": "a@x.com", "invitationFlow": "existing_user_new_workspace"},
        {"email": "a@x.com", "newWorkspace": True, "invitationFlow": "invite"},
    ]
    with marked(), speaking("de"):
        messages = [m for fields in cases for m in parse_details(fields)[1].values()]
        labels = [field_label(name) for name in ("lastName", "skipSendingEmail", "nothing")]
    assert len(messages) == len(cases)
    assert_marked(messages + labels)
    assert all(label.startswith("«") for label in labels)


def test_inline_parse_errors_come_from_the_catalog():
    """`/invite` text: unknown, ambiguous and missing names, an open quote, a bad address,
    too many fields, too many roles, nobody - each a translated sentence."""
    typed = [
        'a@x.com role:"Adm',
        "a@x.com role:Boss team:Sales",
        "a@x.com role: team:",
        "a@x.com role:Admin role:Member",
        "nope",
        "a@x.com, Ada, Lovelace, Extra",
        "role:Member",
    ]
    errors = []
    with marked(), speaking("de"):
        for text in typed:
            errors += parse_inline(text, ROLES, TEAMS).errors
        errors += parse_inline("a@x.com role:x", [], []).errors
        errors.append(resolve("e", [Team(id="1", name="Eng"), Team(id="2", name="Ext")], "team")[1])
    assert len(errors) >= 10
    assert_marked(errors, allowed=[*AWORK_NAMES, "Adm", "Boss", "Sales", "nope", "Eng", "Ext"])
    assert not any("«Line" in e for e in errors)  # inline, no line numbers


def test_list_errors_name_the_line_in_the_catalogs_words():
    """A list's errors ("Line 2: …") and its size limit are translated whole."""
    text = 'a@x.com\nnope\nb@x.com, A, B, C\n"c@x.com, unclosed\n'
    with marked(), speaking("de"):
        _people, errors = parse_people(text)
        _people, too_many = parse_people("\n".join(f"p{i}@x.com" for i in range(501)))
    assert [e[:7] for e in errors] == ["«Line 2", "«Line 3", "«Line 4"]
    assert_marked(errors + too_many[:1], allowed=["nope"])


def test_step_input_errors_and_outcomes_come_from_the_catalog():
    """The Workflow Builder step's input errors and its completed-with-error sentences."""
    bad = {"requester": "nobody", "email": 3, "role": "Boss", "teams": ["Sales"], "skip_email": 1}
    failure = SimpleNamespace(said=lambda: "awork said no", retryable=True)

    def run(outcome, **fields):
        values = {"deny_reason": None, "failure": None, **fields}
        return SimpleNamespace(
            details=SimpleNamespace(email="a@x.com"), step_outcome=lambda: outcome, **values
        )

    with marked(), speaking("de"):
        _details, _requester, errors = read_inputs(bad, ROLES, TEAMS)
        _details, _requester, missing = read_inputs({"requester": "U123"}, ROLES, TEAMS)
        said = [
            steps.invalid_inputs(errors + missing),
            steps.step_error(run("denied")),
            steps.step_error(run("denied", deny_reason="Use the agency account")),
            steps.step_error(run("expired")),
            steps.step_error(run("failed")),
            steps.step_error(run("failed", failure=failure)),
        ]
    assert len(errors) == 5 and missing
    allowed = ["a@x.com", "Boss", "Sales", "Use the agency account", "awork said no"]
    assert_marked(errors + missing + said, allowed=allowed + AWORK_NAMES)


def test_shortcut_answers_and_file_problems_come_from_the_catalog():
    """The message shortcut's private answers and the bulk file's problems are catalog texts."""
    with marked(), speaking("de"):
        answers = [
            shortcuts.not_a_person("/invite"),
            shortcuts.no_address("UADA", "/invite"),
            shortcuts.slack_failed("ratelimited", "/invite"),
        ]
        problems = [
            _(p)
            for p in (
                files.NOT_SLACKS,
                files.TOO_BIG,
                files.TOO_SLOW,
                files.UNREACHABLE,
                files.REDIRECTED,
                files.UNREADABLE,
                files.NOT_UTF8,
            )
        ]
    assert_marked(answers + problems, allowed=["ratelimited"])


def test_view_errors_from_the_listeners_come_from_the_catalog(driver, slack):
    """What the form listeners answer themselves: advanced fields from a non-approver, an
    empty bulk list, an empty deny reason."""
    with marked():
        advanced = driver.view_submission(
            forms.invite_form(GENERAL, advanced=True),
            {"email": "ada@example.com", "workspaceId": "new"},
            "UREQ",
        )
        empty = driver.view_submission(bulk_form.bulk_form(GENERAL), {}, "UREQ")
        no_reason = driver.submit_deny("inv-000000000000", " ", "UAPPROVER1")
    shown = [
        message
        for response in (advanced, empty, no_reason)
        for message in json.loads(response.body)["errors"].values()
    ]
    assert len(shown) == 3
    assert_marked(shown)


def test_without_a_catalog_entry_german_falls_back_to_english():
    """Under speaking("de") a text the catalog does not have yet is the English msgid (so
    nothing breaks before the translations are merged)."""
    with speaking("de"):
        view = forms.invite_form(GENERAL, advanced=True)
    assert all(isinstance(text, str) and text for text in visible_texts(view))


# --- the wording fixes ---------------------------------------------------------------------


@pytest.mark.parametrize("view", [forms.invite_form(None, True), bulk_form.bulk_form(None)])
def test_no_choice_is_offered_twice(view):
    """No two options of one select share a label - nor of the whole form: "Invite into
    this workspace" is the Workspace field's choice only, not also an invitation flow."""
    groups = selects(view)
    assert groups
    for group in groups:
        assert len(group) == len(set(group)), group
    everywhere = [text for group in groups for text in group]
    assert len(everywhere) == len(set(everywhere)), everywhere


def test_the_welcome_email_field_says_it_skips_the_email():
    """Ticked means awork sends no welcome email, and the label says so: "Skip awork's
    welcome email: yes" cannot be read as "sent"."""
    for view in (forms.invite_form(None, False), bulk_form.bulk_form(None)):
        [block] = [b for b in view["blocks"] if b.get("block_id") == "skipSendingEmail"]
        assert block["label"]["text"] == "Skip awork's welcome email"
        assert [o["text"]["text"] for o in block["element"]["options"]] == ["Don't send it"]
    assert field_label("skipSendingEmail") == "Skip awork's welcome email"


def test_the_role_field_names_awork_s_default_role():
    """Left empty, the role is "awork's default role", as everywhere else."""
    for view in (forms.invite_form(None, False), bulk_form.bulk_form(None)):
        [block] = [b for b in view["blocks"] if b.get("block_id") == "roleId"]
        assert "awork's default role" in block["hint"]["text"]


def test_a_flow_picked_before_switching_back_to_this_workspace_is_set_aside():
    """As with the plan: a select cannot be cleared, so a new-workspace flow left over from
    choosing "new" does not block inviting into this workspace."""
    view = forms.invite_form(None, advanced=True)
    from tests.slack_requests import state_for

    state = state_for(
        view,
        {
            "email": "a@x.com",
            "workspaceId": "current",
            "planId": "business",
            "invitationFlow": "existing_user_new_workspace",
        },
    )
    details, errors = parse_details(forms.form_fields(state))
    assert errors == {} and details.flow == "invite" and details.plan_id is None
