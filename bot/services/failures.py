"""awork's refusals in words an admin acts on: what the failed request says, and whether it
may be retried. Never a key or a code.

A failure is stored, and shown later to whoever reads it, in their language: it keeps the
English msgid (marked with `N_`) and its values - the address and awork's own words, which are
never translated - and `Failure.said()` puts them together; its `message` is the English
sentence."""

from __future__ import annotations

from bot.awork.errors import AworkError
from bot.domain.records import Failure
from bot.i18n import N_, SOURCE, speaking

ANSWER_LOST = N_(
    "awork's answers to the invitation were lost twice, and awork does not have the "
    "person: nobody was invited. Try again."
)
NOT_ANSWERING = N_("awork is not answering right now, so nobody was invited. Try again shortly.")
ALREADY_IN = N_("{email} is already in the awork workspace.")
NO_SEATS = N_("awork has no free seats left. Book more seats in awork, then ask again.")
KEY_REFUSED = N_("awork refused the bot's API key. An admin needs to check AWORK_API_KEY.")
ROLE_OR_TEAM = N_(
    "The chosen role or a team is not valid in awork any more. Ask again with a current one."
)
GONE = N_(
    "awork no longer offers invitations by API (POST /invitations answered {status}; "
    "awork's current published API no longer lists that endpoint), so nobody was invited. "
    "Invite people in awork itself meanwhile."
)
NOT_FOUND = N_("awork could not find the workspace, role or team for this invitation.")
NOT_ACCEPTED = N_("awork did not accept the invitation: {reasons}")
REFUSED = N_("awork refused the invitation ({code}) {description}")
REFUSED_BARE = N_("awork refused the invitation ({code})")


def invitations_gone(exc: AworkError) -> bool:
    """awork answered `POST /invitations` with 404 or 405 about the endpoint itself (not about
    a workspace it could not find): this awork no longer takes invitations by API."""
    if exc.endpoint != "POST /invitations" or exc.status not in (404, 405):
        return False
    return exc.status == 405 or "workspace" not in exc.description.lower()


def invitations_gone_reason(status: int | None) -> str:
    """Why nobody can be invited when awork no longer offers `POST /invitations`, for the
    doctor's report (English, for operators)."""
    return (
        f"awork no longer offers invitations by API (POST /invitations answered {status}; "
        "awork's current published API no longer lists that endpoint)"
    )


def describe_failure(exc: AworkError, email: str) -> Failure:
    """awork's error in words an admin acts on. Never includes a key or a code."""
    props = " ".join(item["property"].lower() for item in exc.validation_errors)
    text = f"{exc.description} {' '.join(exc.details)}".lower()
    if exc.code == "answer-lost":
        return _failure(exc.code, ANSWER_LOST, retryable=True)
    if exc.retryable:
        return _failure(exc.code, NOT_ANSWERING, retryable=True)
    values: dict[str, str] = {}
    fields: list[tuple[str, str]] = []
    if exc.code == "already-exist-error":
        message, values = ALREADY_IN, {"email": email}
    elif exc.code == "insufficient-seats":
        message = NO_SEATS
    elif exc.code == "unauthorized" or exc.status == 401:
        message = KEY_REFUSED
    elif "role" in props or "team" in props or "role" in text or "team" in text:
        message = ROLE_OR_TEAM
    elif invitations_gone(exc):
        message, values = GONE, {"status": str(exc.status)}
    elif exc.code == "not-found" or exc.status == 404:
        message = NOT_FOUND
    elif exc.code in ("validation-failed", "invalid-model") and exc.validation_errors:
        message = NOT_ACCEPTED
        fields = [(str(item["property"]), str(item["message"])) for item in exc.validation_errors]
    elif exc.description.strip():
        message, values = REFUSED, {"code": exc.code, "description": exc.description.strip()}
    else:
        message, values = REFUSED_BARE, {"code": exc.code}
    return _failure(exc.code, message, values=values, fields=fields)


def _failure(
    code: str,
    msgid: str,
    retryable: bool = False,
    values: dict[str, str] | None = None,
    fields: list[tuple[str, str]] | None = None,
) -> Failure:
    failure = Failure(
        code=code,
        message="",
        retryable=retryable,
        msgid=msgid,
        values=values or {},
        fields=fields or [],
    )
    with speaking(SOURCE):
        return failure.model_copy(update={"message": failure.said()})
