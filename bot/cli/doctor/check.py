"""One line of `invite-bot doctor`: a check that passed, failed (with its fix) or was not
made because one it depends on failed."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.text import clean_text


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not checked, because a check it depends on failed
    detail: str
    fix: str = ""

    @classmethod
    def passed(cls, name: str, detail: str) -> Check:
        return cls(name, True, detail)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str = "") -> Check:
        return cls(name, False, detail, fix)

    @classmethod
    def skipped(cls, name: str, detail: str) -> Check:
        return cls(name, None, detail)

    def line(self) -> str:
        if self.ok:
            return f"ok  {self.name}: {self.detail}"
        if self.ok is None:
            return f"--  {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}" + (f" — fix: {self.fix}" if self.fix else "")


def clean(value: object) -> str:
    """A name from Slack or awork, fit for one terminal line."""
    return clean_text(str(value if value is not None else "?"))
