"""The awork client against httpx.MockTransport and the spec-following fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from bot.awork.client import AworkClient
from bot.awork.errors import AworkError, AworkUnavailable, announced_wait
from bot.awork.ratelimit import RateLimiter
from bot.domain.awork_models import Invitation
from tests.fakes.awork import API_KEY, ROLE_PM, TEAM_DESIGN, WORKSPACE_ID, FakeAwork, Fault
from tests.fakes.clock import FakeClock

BASE = "https://api.awork.com/api/v1"


def client_for(handler, clock: FakeClock | None = None, **kwargs) -> AworkClient:
    """A client whose retries and rate limiter wait on `clock`, which records the waits."""
    clock = clock or FakeClock()
    return AworkClient(
        BASE,
        API_KEY,
        transport=httpx.MockTransport(handler),
        retry_sleep=clock.sleep,
        limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        **kwargs,
    )


@pytest.fixture
def fake() -> FakeAwork:
    return FakeAwork()


def test_invitation_request_path_headers_and_camel_case_body(fake):
    """POST /invitations carries the bearer key and awork's camelCase fields, unset ones left out."""
    client = client_for(fake.handler)
    result = client.create_invitation(
        Invitation(
            email="ada@example.com",
            workspace_id=WORKSPACE_ID,
            invitation_flow="invite",
            role_id=ROLE_PM,
            team_ids=[TEAM_DESIGN],
            first_name="Ada",
            gender="female",
            skip_sending_email=True,
            booked_seats=3,
            connect_invite_code="C1",
            title="Dr.",
            position="CTO",
            last_name="L",
        )
    )
    [request] = fake.calls("POST", "/invitations")
    assert str(request.url) == f"{BASE}/invitations"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "email": "ada@example.com", "workspaceId": WORKSPACE_ID, "invitationFlow": "invite", "roleId": ROLE_PM,
        "teamIds": [TEAM_DESIGN], "firstName": "Ada", "lastName": "L", "gender": "female", "skipSendingEmail": True,
        "bookedSeats": 3, "connectInviteCode": "C1", "title": "Dr.", "position": "CTO",
    }  # fmt: skip
    assert result.invitation_code.get_secret_value() == fake.invitations[0]["invitationCode"]
    assert result.user_id == fake.invitations[0]["userId"] and result.workspace.id == WORKSPACE_ID
    assert "invitationCode" not in repr(result) and fake.invitations[0][
        "invitationCode"
    ] not in repr(result)


def test_password_passcode_and_plan_are_sent_only_when_set(fake):
    """Programmatic fields (password, passcode, planId) go out when given, never as nulls."""
    client = client_for(fake.handler)
    client.create_invitation(
        Invitation(
            email="a@example.com",
            password=SecretStr("S3cret!"),
            passcode="p",
            plan_id="plan",
            invitation_flow="new_user_new_workspace",
        )
    )
    client.create_invitation(Invitation(email="b@example.com", workspace_id=WORKSPACE_ID))
    first, second = (json.loads(r.content) for r in fake.calls("POST", "/invitations"))
    assert first == {
        "email": "a@example.com",
        "password": "S3cret!",
        "passcode": "p",
        "planId": "plan",
        "invitationFlow": "new_user_new_workspace",
    }
    assert second == {"email": "b@example.com", "workspaceId": WORKSPACE_ID}
    assert "S3cret" not in repr(Invitation(email="x@example.com", password=SecretStr("S3cret!")))


def test_roles_teams_and_me(fake):
    """Roles (archived left out), teams and the workspace id from /users/me."""
    client = client_for(fake.handler)
    assert [r.name for r in client.roles()] == ["Admin", "Member", "Project Manager"]
    assert client.roles()[0].is_admin_role
    assert [t.name for t in client.teams()] == ["Design", "Engineering"]
    assert client.workspace_id() == WORKSPACE_ID


def test_users_are_read_page_by_page(fake):
    """GET /users is followed through pages of 1000 until aw-totalitems is reached."""
    fake.users += [
        {"id": f"u{i}", "userContactInfos": [{"type": "email", "value": f"user{i}@example.com"}]}
        for i in range(2100)
    ]
    client = client_for(fake.handler)
    users = list(client.users())
    assert len(users) == 2101
    pages = [(r.url.params["page"], r.url.params["pageSize"]) for r in fake.calls("GET", "/users")]
    assert pages == [("1", "1000"), ("2", "1000"), ("3", "1000")]
    assert client.find_user_by_email("USER2050@example.com").id == "u2050"
    assert client.find_user_by_email("nobody@example.com") is None


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "validation-failed"),
        (400, "invalid-model"),
        (400, "already-exist-error"),
        (400, "insufficient-seats"),
        (401, "unauthorized"),
        (404, "not-found"),
        (400, "invalid-operation"),
    ],
)
def test_error_codes_become_aworkerror_without_retry(status, code):
    """Each awork error code is raised as AworkError with its code; 4xx is never retried."""
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(
            status,
            json={
                "code": code,
                "description": "nope",
                "link": "https://developers.awork.com",
                "validationErrors": [{"property": "RoleId", "message": "bad"}],
            },
        )

    with pytest.raises(AworkError) as caught:
        client_for(handler).create_invitation(Invitation(email="a@example.com"))
    assert caught.value.code == code and caught.value.status == status
    assert caught.value.validation_errors == [{"property": "RoleId", "message": "bad"}]
    assert not caught.value.retryable and len(calls) == 1


def test_bare_status_without_json_gets_a_code():
    """A 401 with an empty body still maps to 'unauthorized'."""
    with pytest.raises(AworkError) as caught:
        client_for(lambda r: httpx.Response(401)).roles()
    assert caught.value.code == "unauthorized"


def test_429_waits_for_ratelimit_reset_then_succeeds(fake):
    """A 429 is retried after the seconds in ratelimit-reset."""
    fake.fail_next.append(
        Fault(
            429,
            {"code": "too-many-requests", "description": "x", "link": "x"},
            {"ratelimit-reset": "7", "x-ratelimit-remaining": "0"},
        )
    )
    clock = FakeClock()
    assert len(client_for(fake.handler, clock).roles()) == 3
    assert clock.waits == [7.0]


def test_retry_after_http_date_is_honoured(fake):
    """Retry-After given as an HTTP date is turned into seconds."""
    when = datetime.now(UTC) + timedelta(seconds=20)
    fake.fail_next.append(Fault(503, None, {"Retry-After": format_datetime(when, usegmt=True)}))
    clock = FakeClock()
    client_for(fake.handler, clock).roles()
    assert 15 <= clock.waits[0] <= 20


def test_5xx_is_retried_a_bounded_number_of_times():
    """Persistent 5xx on a GET: 4 attempts with growing waits, then AworkUnavailable."""
    calls = []
    clock = FakeClock()

    def handler(request):
        calls.append(request)
        return httpx.Response(502)

    with pytest.raises(AworkUnavailable) as caught:
        client_for(handler, clock).roles()
    assert len(calls) == 4 and len(clock.waits) == 3
    assert caught.value.retryable and caught.value.status == 502
    assert clock.waits[0] < clock.waits[2]


def test_5xx_on_post_is_handed_back_as_ambiguous():
    """A POST answered 5xx may have been done: no blind resend, the error says 'ambiguous'."""
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503, headers={"Retry-After": "4"})

    with pytest.raises(AworkUnavailable) as caught:
        client_for(handler).create_invitation(Invitation(email="a@example.com"))
    assert len(calls) == 1 and caught.value.ambiguous and caught.value.retry_after == 4.0


def test_429_on_post_is_retried():
    """A 429 means awork did not carry the POST out, so it is safe to send again."""
    responses = iter(
        [
            httpx.Response(429, headers={"ratelimit-reset": "1"}),
            httpx.Response(200, json={"invitationCode": "c"}),
        ]
    )
    clock = FakeClock()
    result = client_for(lambda r: next(responses), clock).create_invitation(
        Invitation(email="a@example.com")
    )
    assert result.invitation_code.get_secret_value() == "c" and clock.waits == [1.0]


def test_waits_are_capped():
    """An absurd ratelimit-reset parks neither the retry nor the rate limiter for an hour."""
    clock = FakeClock()
    responses = iter(
        [httpx.Response(429, headers={"ratelimit-reset": "3600"}), httpx.Response(200, json=[])]
    )
    client_for(lambda r: next(responses), clock).roles()
    assert clock.waits == [30.0]


def test_connection_errors_are_retried_then_unavailable():
    """Connection refused is retried, then reported as AworkUnavailable."""
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AworkUnavailable) as caught:
        client_for(handler).roles()
    assert caught.value.code == "connection-failed" and len(calls) == 4


def test_post_read_timeout_is_not_sent_again():
    """A POST that timed out may have been done: it is not blindly repeated."""
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(AworkUnavailable) as caught:
        client_for(handler).create_invitation(Invitation(email="a@example.com"))
    assert caught.value.code == "timeout" and len(calls) == 1


def test_get_read_timeout_is_retried():
    """A GET that timed out is safe to repeat."""
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json=[])

    assert client_for(handler).roles() == [] and len(calls) == 2


def test_announced_wait_reads_the_headers():
    """ratelimit-reset wins over Retry-After; garbage is ignored."""
    assert announced_wait(httpx.Headers({"ratelimit-reset": "2", "retry-after": "9"})) == 2.0
    assert announced_wait(httpx.Headers({"retry-after": "nonsense"})) is None
    assert announced_wait(httpx.Headers({})) is None


def test_error_messages_never_contain_the_key():
    """Nothing the client raises mentions the API key."""

    def handler(request):
        raise httpx.ConnectError(f"failed with headers {request.headers}", request=request)

    with pytest.raises(AworkError) as caught:
        client_for(handler, attempts=1).roles()
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value)
