"""`invite-bot doctor`'s link checks: the acceptance and password link templates render into
web addresses."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from bot.cli.doctor.check import Check, clean
from bot.runtime.config import Settings


def link_checks(settings: Settings) -> list[Check]:
    """INVITE_ACCEPT_URL and INVITE_PASSWORD_URL render, as the bot renders them, into a web
    address."""
    return [
        _link("Acceptance link", "INVITE_ACCEPT_URL", settings.invite_accept_url),
        _link("Password link", "INVITE_PASSWORD_URL", settings.invite_password_url),
    ]


def _link(name: str, variable: str, template: str) -> Check:
    fix = f"in {variable} use only the placeholders {{code}} and {{email}} (write a literal {{ or }} as {{{{ or }}}})"
    try:
        url = template.format(
            code=quote("SAMPLE+CODE=", safe=""), email=quote("ada@example.com", safe="")
        )
    except KeyError as exc:
        return Check.fail(name, f"{variable} has an unknown placeholder {{{exc.args[0]}}}", fix)
    except (IndexError, ValueError, AttributeError) as exc:
        return Check.fail(name, f"{variable} does not render ({exc or 'an empty {}'})", fix)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return Check.fail(
            name,
            f"{variable} renders {clean(url)}, which is not a web address",
            f"start {variable} with https://",
        )
    return Check.passed(name, f"{variable} renders {clean(url)}")
