"""Settings from the environment (or a `.env` file); names are fixed by DESIGN.md."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain.ids import is_slack_id

DEFAULT_ACCEPT_URL = "https://app.awork.com/accept-invitation?invitationCode={code}&email={email}"
DEFAULT_PASSWORD_URL = "https://app.awork.com/reset-password?code={code}&email={email}"


class Settings(BaseSettings):
    """Everything the bot reads from its environment. Secrets are `SecretStr`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr = Field(SecretStr(""), alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr = Field(SecretStr(""), alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    # Seconds Slack has to answer one Web API call made after the ack (posts, updates, DMs):
    # above Slack's own worst case for chat methods, so that a post whose answer did not come
    # is looked for before it is sent again. Opening a modal keeps its own 2.5 s.
    slack_timeout: float = Field(30.0, alias="SLACK_TIMEOUT", gt=0, le=300)

    awork_api_url: str = Field("https://api.awork.com/api/v1", alias="AWORK_API_URL")
    awork_api_key: SecretStr = Field(SecretStr(""), alias="AWORK_API_KEY")
    awork_workspace_id: str | None = Field(None, alias="AWORK_WORKSPACE_ID")
    # Seconds awork has to answer one request (connecting: at most 5 of them).
    awork_timeout: float = Field(15.0, alias="AWORK_TIMEOUT", gt=0, le=300)
    # A work lease outlives the longest awork request by this much (seconds).
    invite_lease_margin: float = Field(30.0, alias="INVITE_LEASE_MARGIN", gt=0, le=3600)
    # An invitation whose answer was lost is looked for in awork this long (seconds) before
    # a confirmed absence lets it be sent again.
    invite_settle_seconds: float = Field(120.0, alias="INVITE_SETTLE_SECONDS", gt=0, le=86400)

    invite_admin_channel: str = Field("", alias="INVITE_ADMIN_CHANNEL")
    invite_approvers: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), alias="INVITE_APPROVERS"
    )
    # A TOML file: who may ask, approved and blocked domains, a daily limit, routes
    # (bot/domain/policy.py, docs/policy.md). Unset: anyone asks, INVITE_APPROVERS decide.
    invite_policy: str | None = Field(None, alias="INVITE_POLICY")
    # The language of what goes to a channel (the approval message, its updates and thread);
    # what goes to one person follows their Slack locale (bot/i18n, docs/i18n.md).
    invite_language: str = Field("en", alias="INVITE_LANGUAGE")
    invite_db_path: str = Field("./invite-bot.sqlite", alias="INVITE_DB_PATH")
    # postgresql://...: the store is PostgreSQL, shared by any number of replicas.
    invite_database_url: SecretStr | None = Field(None, alias="INVITE_DATABASE_URL")
    # Seconds PostgreSQL has to answer when the store opens (libpq waits at least 2).
    invite_database_connect_timeout: float = Field(
        10.0, alias="INVITE_DATABASE_CONNECT_TIMEOUT", gt=0, le=300
    )
    # Decided requests older than this many days move to the archive (still readable).
    invite_retention_days: int = Field(90, alias="INVITE_RETENTION_DAYS", ge=1)
    invite_accept_url: str = Field(DEFAULT_ACCEPT_URL, alias="INVITE_ACCEPT_URL")
    invite_password_url: str = Field(DEFAULT_PASSWORD_URL, alias="INVITE_PASSWORD_URL")
    # Slack members get the invitation as a DM with an Accept button; awork's email is skipped.
    invite_skip_email_for_slack_members: bool = Field(
        True, alias="INVITE_SKIP_EMAIL_FOR_SLACK_MEMBERS"
    )

    host: str = Field("0.0.0.0", alias="HOST")  # noqa: S104 - a server is meant to be reachable
    port: int = Field(3000, alias="PORT", ge=0, le=65535)  # 0: any free port
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # `json`: one JSON object per log line, with the id of the request it belongs to.
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    # HTTP mode: a request must arrive whole within this many seconds of its first byte (and an
    # idle connection closes after as long); a stalled client holds a socket, never a thread.
    http_body_timeout: float = Field(5.0, alias="HTTP_BODY_TIMEOUT", gt=0, le=300)

    # How often the role/team picker cache is refreshed from awork, in seconds.
    catalog_refresh_seconds: float = Field(300.0, alias="INVITE_CATALOG_REFRESH_SECONDS")
    # Requests by approvers themselves skip approval (an admin role still needs a second one).
    invite_self_approve: bool = Field(False, alias="INVITE_SELF_APPROVE")
    # A pending request gets a reminder in its thread after this long, and expires after that.
    invite_remind_after: timedelta = Field(
        timedelta(hours=24), alias="INVITE_REMIND_AFTER", gt=timedelta(0)
    )
    invite_expire_after: timedelta = Field(
        timedelta(days=7), alias="INVITE_EXPIRE_AFTER", gt=timedelta(0)
    )
    # How often failed Slack posts are redone and crash-orphaned invitations settled, seconds.
    sweep_seconds: float = Field(30.0, alias="INVITE_SWEEP_SECONDS", gt=0)
    # awork's per-workspace rate limit (3000/min on Enterprise); the bot stays inside it.
    awork_rate_per_second: int = Field(50, alias="AWORK_RATE_PER_SECOND", ge=1)
    awork_rate_per_minute: int = Field(1000, alias="AWORK_RATE_PER_MINUTE", ge=1)
    # Invitations of a bulk request sent at the same time (still within the rate limit).
    bulk_concurrency: int = Field(16, alias="INVITE_BULK_CONCURRENCY", ge=1, le=64)
    # Threads serving Slack requests, and as many running the work after the acks. Under one
    # interpreter lock more do not answer sooner; each costs its stack, and a burst's work
    # running on all of them at once leaves the memory it peaked at (docs/benchmarks.md).
    threads: int = Field(16, alias="INVITE_THREADS", ge=4, le=512)

    @field_validator("invite_remind_after", "invite_expire_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """'90m', '24h', '7d' or '30s' as well as seconds and ISO 8601 ('P7D')."""
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value.lower())
            if match:
                unit = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[
                    match[2]
                ]
                try:
                    return timedelta(**{unit: float(match[1])})
                except OverflowError:
                    raise ValueError("is longer than a duration can be") from None
            from pydantic import TypeAdapter

            try:  # pydantic's own forms too: ISO 8601, "7 days", "24:00:00"
                return TypeAdapter(timedelta).validate_python(value.strip())
            except ValidationError:
                raise ValueError(
                    "write a duration such as 90m, 24h or 7d (or a number of seconds)"
                ) from None
        return value

    @field_validator("slack_api_url", "awork_api_url", mode="before")
    @classmethod
    def _web_address(cls, value: object, info: ValidationInfo) -> object:
        """With its scheme: without one, every call fails as a network error. Empty: the
        default (the real service's)."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return cls.model_fields[str(info.field_name)].default
        if not value.strip().lower().startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a loopback stand-in)")
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _level_name(cls, value: str) -> str:
        """A name the logging module knows (WARN and FATAL too), in any case."""
        import logging

        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError("must be a level name: DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value  # JSON as json

    @field_validator("invite_approvers", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    # Ids as the policy file takes them (a name like #approvals or @olga is refused at start,
    # not left to fail on every post or to let nobody approve).
    @field_validator("invite_approvers")
    @classmethod
    def _approver_ids(cls, value: frozenset[str]) -> frozenset[str]:
        for entry in value:
            if not is_slack_id(entry, "UWS"):
                raise ValueError(
                    f"{entry!r} is not a Slack member id (U…) or user-group id (S…); copy "
                    "a member's from their profile (⋮ → Copy member ID)"
                )
        return value

    @field_validator("invite_admin_channel")
    @classmethod
    def _channel_id(cls, value: str) -> str:
        value = value.strip()
        if value and not is_slack_id(value, "CG"):
            raise ValueError(
                f"{value!r} is not a Slack channel id (C…); copy it from the bottom of the "
                "channel's details"
            )
        return value

    @field_validator("invite_database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            scheme, _, rest = value.get_secret_value().partition("://")
            if scheme not in ("postgresql", "postgres"):
                raise ValueError("must start with postgresql://")
            # An @ in the password, not encoded, ends it early: the rest would be read as the
            # host, and the driver's error would print that part of the password.
            after = rest.partition("@")[2]  # libpq ends the user info at the first @
            if "@" in re.split(r"[/?#]", after, maxsplit=1)[0]:
                raise ValueError("write an @ in the user name or password as %40")
        return value

    @field_validator(
        "awork_workspace_id",
        "slack_app_token",
        "invite_database_url",
        "invite_policy",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("invite_language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        """`de`, `DE` or a locale such as `de-DE`: one of the languages with a catalog."""
        from bot.i18n import LANGUAGES

        if isinstance(value, str):
            language = value.strip().replace("_", "-").split("-", 1)[0].lower() or "en"
            if language not in LANGUAGES:
                raise ValueError(f"must be one of: {', '.join(LANGUAGES)}")
            return language
        return value

    @field_validator("invite_accept_url", "invite_password_url")
    @classmethod
    def _template_has_code(cls, value: str) -> str:
        if "{code}" not in value:
            raise ValueError("the link template must contain the {code} placeholder")
        return value

    @property
    def sandbox(self) -> bool:
        """No awork key: the built-in awork sandbox answers, and no real invitation is sent."""
        return not self.awork_api_key.get_secret_value()

    def missing_for_serving(self, socket_mode: bool) -> list[str]:
        """Names of variables that must be set before `serve` can work (without
        `AWORK_API_KEY` it runs on the awork sandbox)."""
        needed = {
            "SLACK_BOT_TOKEN": self.slack_bot_token.get_secret_value(),
            "INVITE_ADMIN_CHANNEL": self.invite_admin_channel,
        }
        if socket_mode:
            needed["SLACK_APP_TOKEN"] = (
                self.slack_app_token.get_secret_value() if self.slack_app_token else ""
            )
        else:
            needed["SLACK_SIGNING_SECRET"] = self.slack_signing_secret.get_secret_value()
        return [name for name, value in needed.items() if not value]


class SlackToken(BaseSettings):
    """SLACK_BOT_TOKEN alone, read as Settings reads it: plain `invite-bot` serves when it is
    set and is the shell otherwise, whatever else a .env holds (the shell makes its own)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    slack_bot_token: SecretStr = Field(SecretStr(""), alias="SLACK_BOT_TOKEN")


def problems(exc: ValidationError) -> list[str]:
    """What is wrong with the configuration, one line per variable, without its value."""
    return [
        f"configuration {'.'.join(str(part) for part in error['loc']) or 'settings'}: "
        + error["msg"].removeprefix("Value error, ")  # pydantic's, for our own checks
        for error in exc.errors(include_input=False, include_url=False)
    ]
