"""awork's refusals in words an admin acts on: what the failed request says, and whether it
may be retried. Never a key or a code."""

from __future__ import annotations

from bot.awork.errors import AworkError
from bot.domain.details import field_label
from bot.domain.records import Failure


def invitations_gone(exc: AworkError) -> bool:
    """awork answered `POST /invitations` with 404 or 405 about the endpoint itself (not about
    a workspace it could not find): this awork no longer takes invitations by API."""
    if exc.endpoint != "POST /invitations" or exc.status not in (404, 405):
        return False
    return exc.status == 405 or "workspace" not in exc.description.lower()


def invitations_gone_reason(status: int | None) -> str:
    """Why nobody can be invited when awork no longer offers `POST /invitations` (the doctor
    says it too)."""
    return (
        f"awork no longer offers invitations by API (POST /invitations answered {status}; "
        "awork's current published API no longer lists that endpoint)"
    )


def describe_failure(exc: AworkError, email: str) -> Failure:
    """awork's error in words an admin acts on. Never includes a key or a code."""
    props = " ".join(item["property"].lower() for item in exc.validation_errors)
    text = f"{exc.description} {' '.join(exc.details)}".lower()
    if exc.code == "answer-lost":
        message = (
            "awork's answers to the invitation were lost twice, and awork does not have the "
            "person: nobody was invited. Try again."
        )
        return Failure(code=exc.code, message=message, retryable=True)
    if exc.retryable:
        message = "awork is not answering right now, so nobody was invited. Try again shortly."
        return Failure(code=exc.code, message=message, retryable=True)
    if exc.code == "already-exist-error":
        message = f"{email} is already in the awork workspace."
    elif exc.code == "insufficient-seats":
        message = "awork has no free seats left. Book more seats in awork, then ask again."
    elif exc.code == "unauthorized" or exc.status == 401:
        message = "awork refused the bot's API key. An admin needs to check AWORK_API_KEY."
    elif "role" in props or "team" in props or "role" in text or "team" in text:
        message = "The chosen role or a team is not valid in awork any more. Ask again with a current one."
    elif invitations_gone(exc):
        message = f"{invitations_gone_reason(exc.status)}, so nobody was invited. Invite people in awork itself meanwhile."
    elif exc.code == "not-found" or exc.status == 404:
        message = "awork could not find the workspace, role or team for this invitation."
    elif exc.code in ("validation-failed", "invalid-model") and exc.validation_errors:
        reasons = "; ".join(
            f"{field_label(item['property'], item['property'])}: {item['message']}".strip(": ")
            for item in exc.validation_errors
        )
        message = f"awork did not accept the invitation: {reasons}"
    else:
        message = f"awork refused the invitation ({exc.code}) {exc.description}".strip()
    return Failure(code=exc.code, message=message, retryable=False)
