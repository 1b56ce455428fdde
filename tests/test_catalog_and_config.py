"""The picker cache and the settings."""

from __future__ import annotations

import re

import httpx
import pytest
from pydantic import ValidationError

from bot.awork.client import AworkClient
from bot.services.catalog import Catalog
from bot.store import SqliteStore as Store
from tests.conftest import IsolatedSettings, make_settings
from tests.fakes.awork import API_KEY, FakeAwork


@pytest.fixture
def parts(tmp_path):
    fake = FakeAwork()
    store = Store(str(tmp_path / "c.sqlite"))
    client = AworkClient(
        "https://api.awork.com/api/v1",
        API_KEY,
        transport=httpx.MockTransport(fake.handler),
        retry_sleep=lambda _: None,
    )
    yield fake, store, client
    store.close()


def test_failed_refresh_keeps_the_old_lists(parts):
    """When awork fails, the cache keeps what it had."""
    fake, store, client = parts
    catalog = Catalog(client, store)
    assert catalog.refresh()
    fake.down = True
    assert not catalog.refresh()
    assert [r.name for r in catalog.find_roles("")] == ["Admin", "Member", "Project Manager"]


def test_cache_is_persisted_for_a_restart_while_awork_is_down(parts):
    """A new catalog on the same store offers the last good lists without asking awork."""
    fake, store, client = parts
    Catalog(client, store).refresh()
    fake.down = True
    fresh = Catalog(client, store)
    assert [t.name for t in fresh.find_teams("des")] == ["Design"]
    assert fresh.role(fresh.roles[0].id).name == "Admin"


def test_search_matches_all_words_prefix_first(parts):
    """Every typed word must appear; names starting with the query come first."""
    fake, store, client = parts
    fake.roles.append({"id": "r9", "name": "Senior Project Manager"})
    catalog = Catalog(client, store)
    catalog.refresh()
    assert [r.name for r in catalog.find_roles("proj")] == [
        "Project Manager",
        "Senior Project Manager",
    ]
    assert [r.name for r in catalog.find_roles("senior manager")] == ["Senior Project Manager"]
    assert catalog.find_roles("zzz") == []


def test_background_refresh_runs_and_stops(parts):
    """start() fills the cache from a background thread."""
    fake, store, client = parts
    catalog = Catalog(client, store, refresh_seconds=0.05)
    catalog.start()
    try:
        for _ in range(200):
            if len(fake.calls("GET", "/roles")) >= 2:
                break
            import time

            time.sleep(0.01)
        assert len(fake.calls("GET", "/roles")) >= 2 and catalog.roles
    finally:
        catalog.stop()


def test_approvers_are_split_and_secrets_hidden(tmp_path):
    """INVITE_APPROVERS is comma-separated; tokens never show in repr."""
    settings = make_settings(tmp_path, INVITE_APPROVERS=" U01, W02 ,,S03")
    assert settings.invite_approvers == frozenset({"U01", "W02", "S03"})
    assert (
        "xoxb" not in repr(settings)
        and API_KEY not in repr(settings)
        and API_KEY not in str(settings.model_dump())
    )


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("INVITE_ADMIN_CHANNEL", "#approvals", "'#approvals' is not a Slack channel id (C…)"),
        ("INVITE_ADMIN_CHANNEL", "approvals", "'approvals' is not a Slack channel id"),
        ("INVITE_ADMIN_CHANNEL", "U0123456789", "is not a Slack channel id"),
        ("INVITE_APPROVERS", "U0123456789,@olga", "'@olga' is not a Slack member id (U…)"),
        ("INVITE_APPROVERS", "U1 olga", "'U1 olga' is not a Slack member id"),
        ("PORT", "99999", "less than or equal to 65535"),
        ("PORT", "-1", "greater than or equal to 0"),
        ("LOG_LEVEL", "verbose", "must be a level name: DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("INVITE_REMIND_AFTER", "abc", "a duration such as 90m, 24h or 7d"),
        ("INVITE_REMIND_AFTER", "99999999999d", "longer than a duration can be"),
        ("AWORK_API_URL", "127.0.0.1:8081/api/v1", "must start with https://"),
        ("SLACK_API_URL", "slack.com/api/", "must start with https://"),
    ],
)
def test_a_setting_in_no_form_it_takes_is_refused_saying_what_works(tmp_path, name, value, words):
    """Refused at start, saying what works, instead of serving wrong: a channel name (no post
    reaches it) or a person's name among the approvers (nobody can approve); a port past 65535
    (the OS listens on another, modulo 65536, than the one logged); an unknown log level (it ran
    at INFO); a duration in no form; an API address without its scheme (every call failed as a
    network error)."""
    with pytest.raises(ValidationError, match=re.escape(words)):
        make_settings(tmp_path, **{name: value})


def test_ids_are_taken_without_the_spaces_around_them(tmp_path):
    """A channel id with spaces around it, as pasted, is the id."""
    settings = make_settings(tmp_path, INVITE_ADMIN_CHANNEL=" C0123456789 ")
    assert settings.invite_admin_channel == "C0123456789"


def test_log_level_and_format_are_taken_in_any_case(tmp_path):
    """`debug`, `warn` and `JSON` are DEBUG, WARN and json; durations take ISO 8601 and
    pydantic's forms as well; an API address left empty is the real service's; an @ in a
    database URL's query is no password's."""
    settings = make_settings(tmp_path, LOG_LEVEL=" debug", LOG_FORMAT="JSON")
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert make_settings(tmp_path, LOG_LEVEL="warn").log_level == "WARN"
    for written in ("PT90M", "01:30:00", "0 days 01:30:00"):
        remind = make_settings(tmp_path, INVITE_REMIND_AFTER=written).invite_remind_after
        assert remind.total_seconds() == 5400, written
    url = "postgresql://u:p@db.example.com?application_name=bot@prod"
    assert make_settings(tmp_path, INVITE_DATABASE_URL=url).invite_database_url
    assert (
        make_settings(tmp_path, AWORK_API_URL=" ").awork_api_url == "https://api.awork.com/api/v1"
    )


def test_accept_url_needs_the_code_placeholder(tmp_path):
    """An acceptance template without {code} is a configuration error."""
    with pytest.raises(ValidationError):
        make_settings(tmp_path, INVITE_ACCEPT_URL="https://example.com/accept")


def test_defaults_are_the_real_services():
    """Unset URLs default to Slack's and awork's production APIs."""
    settings = IsolatedSettings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.awork_api_url == "https://api.awork.com/api/v1"
    assert settings.invite_db_path == "./invite-bot.sqlite"
    assert settings.sandbox  # no AWORK_API_KEY: the awork sandbox, not a missing variable
    assert settings.missing_for_serving(socket_mode=False) == [
        "SLACK_BOT_TOKEN",
        "INVITE_ADMIN_CHANNEL",
        "SLACK_SIGNING_SECRET",
    ]


def test_env_example_names_only_real_settings():
    """Every variable in .env.example is one the Settings class reads."""
    from pathlib import Path

    from bot.runtime.config import Settings

    known = {field.alias for field in Settings.model_fields.values()}
    text = (Path(__file__).parents[1] / ".env.example").read_text()
    names = {
        line.lstrip("# ").split("=", 1)[0]
        for line in text.splitlines()
        if "=" in line and not line.startswith("# Copy")
    }
    assert names and names <= known, names - known


def test_replicas_refresh_the_catalog_once_per_period(tmp_path, pg_url):
    """Three replicas on one PostgreSQL store: one asks awork for roles, teams and members per
    period, the others take the lists from the store; a failed fetch is tried again soon."""
    from bot.store.postgres import PostgresStore

    fake = FakeAwork()
    stores = [PostgresStore(pg_url) for _ in range(3)]
    try:
        clients = [
            AworkClient(
                "https://api.awork.com/api/v1",
                API_KEY,
                transport=httpx.MockTransport(fake.handler),
                retry_sleep=lambda _: None,
                attempts=1,
            )
            for _ in stores
        ]
        catalogs = [
            Catalog(client, store, refresh_seconds=300, owner=f"R{i}")
            for i, (client, store) in enumerate(zip(clients, stores, strict=True))
        ]
        fake.down = True
        assert [c.refresh_shared() for c in catalogs] == [False, False, False]
        assert len(fake.calls("GET", "/roles")) == 1  # one replica tried, the others waited
        fake.down = False
        with stores[0]._conn() as conn:  # the retry period (30 s) passes
            conn.execute("UPDATE periodic SET next_at = clock_timestamp() WHERE name = 'catalog'")
        assert [c.refresh_shared() for c in catalogs] == [True, True, True]
        assert len(fake.calls("GET", "/roles")) == 2 and len(fake.calls("GET", "/users")) == 1
        assert all(
            [r.name for r in c.find_roles("")] == ["Admin", "Member", "Project Manager"]
            for c in catalogs
        )
        assert all(c.is_member("owner@ncnstn.com") for c in catalogs)
    finally:
        for store in stores:
            store.close()


def test_invite_language_is_one_with_a_catalog(tmp_path):
    """INVITE_LANGUAGE takes `de`, `DE` or a locale (`de-AT`); one without a catalog is refused
    naming those there are; unset it is English."""
    assert make_settings(tmp_path).invite_language == "en"
    for value in ("de", "DE", "de-AT", "de_DE"):
        assert make_settings(tmp_path, INVITE_LANGUAGE=value).invite_language == "de"
    with pytest.raises(ValidationError, match="must be one of: en, de"):
        make_settings(tmp_path, INVITE_LANGUAGE="fr")
