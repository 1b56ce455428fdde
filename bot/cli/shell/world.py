"""The shell's Slack workspace: its people, its channels and the messages posted in them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TEAM_ID = "TSHELL"
TEAM = {"id": TEAM_ID, "domain": "shell"}
BOT_USER = "UBOT"  # the bot's own member id: the author of what it posts
APPROVALS = "CAPPROVALS"
GENERAL = "CGENERAL"
CHANNEL_NAMES = {APPROVALS: "#approvals", GENERAL: "#general"}


@dataclass
class User:
    name: str
    id: str
    email: str

    @property
    def full_name(self) -> str:
        """The name a profile shows: `@grace.hopper` is Grace Hopper."""
        return " ".join(part.capitalize() for part in re.split(r"[._-]+", self.name) if part)


@dataclass
class Message:
    number: int
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    to: str | None = None  # an ephemeral's only reader
    author: str = BOT_USER  # who posted it: the bot, or a person who said it (`say`)


class People:
    """Who is in the workspace (@ada, and the approvers @olga and @sam, to begin with) and who
    is typing; a name not seen before is a new member."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        for name in ("ada", "olga", "sam"):
            self.user(name)
        self.current = self.users["ada"]

    def user(self, name: str) -> User:
        name = name.lstrip("@").lower()
        if name not in self.users:
            user_id = "U" + re.sub(r"[^A-Z0-9]", "", name.upper())[:10]
            self.users[name] = User(name, user_id, f"{name}@example.com")
        return self.users[name]

    def name(self, user_id: str) -> str:
        """`@ada` for a member the shell knows, else Slack's mention `<@U…>`."""
        found = next((u.name for u in self.users.values() if u.id == user_id), None)
        return f"@{found}" if found else f"<@{user_id}>"

    def by_id(self, user_id: str) -> User | None:
        return next((u for u in self.users.values() if u.id == user_id), None)

    def by_email(self, email: str) -> User | None:
        wanted = email.lower()
        return next((u for u in self.users.values() if u.email == wanted), None)
