"""awork's objects as the sandbox keeps and answers them: workspaces, roles, teams, users
(fields starting with `_` are the sandbox's own and never leave it) and awork's
`ErrorResponse`."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

DOCS = "https://developers.awork.com"


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def workspace(workspace_id: str, name: str, seats: int, plan: str = "business") -> dict:
    return {
        "id": workspace_id,
        "name": name,
        "allowSocialLogin": True,
        "allowCredentialsLogin": True,
        "requireMfa": False,
        "createdOn": now(),
        "_seats": seats,
        "_plan": plan,
    }


def role(name: str, admin: bool = False, guest: bool = False) -> dict:
    return {
        "id": new_id(),
        "name": name,
        "isAdminRole": admin,
        "isGuestRole": guest,
        "isArchived": False,
        "createdOn": now(),
    }


def team(name: str, icon: str, color: str) -> dict:
    return {"id": new_id(), "name": name, "icon": icon, "color": color, "createdOn": now()}


def user(
    email: str, first: str | None, last: str | None, workspace_id: str, accepted: bool
) -> dict:
    user_id = new_id()
    return {
        "id": user_id,
        "firstName": first,
        "lastName": last,
        "createdOn": now(),
        "isArchived": False,
        "isDeactivated": False,
        "status": {"invitationAccepted": accepted, "isDeactivated": False},
        "userContactInfos": [
            {
                "id": new_id(),
                "type": "email",
                "subType": "work",
                "value": email,
                "isAddress": False,
            }
        ],
        "_workspace": workspace_id,
    }


def public(record: dict) -> dict:
    """The record as awork shows it."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def emails(user: dict) -> list[str]:
    """A user's addresses, lowercased."""
    return [
        str(c.get("value", "")).lower()
        for c in user.get("userContactInfos") or []
        if c.get("type") == "email"
    ]


def error(status: int, code: str, description: str, **extra: Any) -> httpx.Response:
    """An answer with awork's ErrorResponse body."""
    body = {
        "code": code,
        "description": description,
        "link": DOCS,
        "traceId": secrets.token_hex(8),
        **extra,
    }
    return httpx.Response(status, json=body)
