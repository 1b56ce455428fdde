"""The awork retry rules' and error mapping's promises that mutation testing found
unchecked (docs/mutation.md): the backoff schedule, the waits awork announces, and what an
error answer becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bot.awork import retry
from bot.awork.errors import AworkError, AworkUnavailable, announced_wait, error_from_response
from tests.fakes.clock import FakeClock

BASE = "https://api.awork.com/api/v1"


@pytest.mark.parametrize(("jitter", "factor"), [(0.0, 0.5), (0.5, 0.75)])
def test_backoff_doubles_with_each_attempt_from_half_to_all_of_its_step(
    monkeypatch, jitter, factor
):
    """Unannounced, attempt n waits backoff x 2^(n-1) x a jitter from one half to one."""
    monkeypatch.setattr(retry.random, "random", lambda: jitter)
    clock = FakeClock()
    transport = retry.RetryTransport(
        httpx.MockTransport(lambda r: httpx.Response(429)), backoff=1.0, sleep=clock.sleep
    )
    response = transport.handle_request(httpx.Request("GET", f"{BASE}/me"))
    assert response.status_code == 429
    assert clock.waits == [factor * step for step in (1, 2, 4)]


def test_each_retry_is_logged_with_the_call_the_trouble_the_wait_and_the_attempt(caplog):
    """Each retry logs method, path, status or "connection failed", wait and attempt of how many."""
    answers = iter([httpx.Response(503, headers={"retry-after": "2"}), httpx.Response(200)])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/teams"):
            raise httpx.ConnectError("refused", request=request)
        return next(answers)

    transport = retry.RetryTransport(
        httpx.MockTransport(handler), attempts=2, sleep=FakeClock().sleep
    )
    caplog.set_level("WARNING", logger=retry.__name__)
    assert transport.handle_request(httpx.Request("GET", f"{BASE}/me")).status_code == 200
    with pytest.raises(httpx.ConnectError):
        transport.handle_request(httpx.Request("GET", f"{BASE}/teams"))
    assert caplog.messages[0] == "awork GET /api/v1/me: 503, retrying in 2.0s (attempt 1 of 2)"
    assert caplog.messages[1].startswith("awork GET /api/v1/teams: connection failed, retrying")
    assert len(caplog.messages) == 2


def test_an_announced_wait_of_zero_is_no_wait():
    """awork saying "now" (0 seconds, or a date already past) is a wait of 0, not more."""
    assert announced_wait(httpx.Headers({"retry-after": "0"})) == 0.0
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=1), usegmt=True)
    assert announced_wait(httpx.Headers({"retry-after": past})) == 0.0


def test_an_unreadable_header_does_not_hide_a_later_one():
    """A ratelimit-reset that is neither seconds nor a date is skipped: Retry-After counts."""
    headers = httpx.Headers({"ratelimit-reset": "soon", "retry-after": "5"})
    assert announced_wait(headers) == 5.0


def test_a_date_without_a_time_zone_is_read_as_utc():
    """An HTTP date with "-0000" (no zone said) is taken as UTC."""
    when = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S -0000")
    assert 50 < announced_wait(httpx.Headers({"retry-after": when})) <= 60


def answer(status: int, url: str = f"{BASE}/invitations", **kwargs) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", url), **kwargs)


def test_an_error_answer_keeps_what_awork_said_and_which_call_it_was():
    """Code, description, status, validation errors, details and the call reach the exception."""
    body = {
        "code": "invalid-model",
        "description": "The model is invalid.",
        "validationErrors": [{"property": "Email", "message": "bad"}, {"message": "no field"}],
        "details": ["first", 2],
    }
    error = error_from_response(answer(400, json=body))
    assert type(error) is AworkError and str(error) == "invalid-model: The model is invalid."
    assert (error.code, error.description, error.status) == (
        "invalid-model",
        "The model is invalid.",
        400,
    )
    assert error.validation_errors == [
        {"property": "Email", "message": "bad"},
        {"property": "", "message": "no field"},
    ]
    assert error.details == ["first", "2"] and error.endpoint == "POST /invitations"
    bare = error_from_response(answer(400, json={"code": "x", "validationErrors": [{}]}))
    assert bare.description == "" and str(bare) == "x" and bare.details == []
    assert bare.validation_errors == [{"property": "", "message": ""}]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "bad-request"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not-found"),
        (429, "rate-limited"),
        (409, "http-409"),
        (502, "http-502"),
    ],
)
def test_a_bare_status_gets_its_code(status, code):
    """An answer without awork's JSON gets a code for its status, `http-<status>` otherwise."""
    error = error_from_response(answer(status, text="<html>oops</html>"))
    assert error.code == code and error.description == "" and str(error) == code
    assert isinstance(error, AworkUnavailable) is (status in (429, 502))


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        (f"{BASE}/users/u-1/invitations", "POST /users/u-1/invitations"),
        ("http://127.0.0.1:8080/invitations", "POST /invitations"),
    ],
)
def test_the_endpoint_is_the_path_under_the_apis_base(url, endpoint):
    """A call is named by its method and its path below /api/v1/ (or below a bare base)."""
    assert error_from_response(answer(500, url)).endpoint == endpoint


def test_an_error_without_a_description_reads_as_its_code():
    """str() of an error with only a code is the code."""
    assert str(AworkError("not-found")) == "not-found"
    assert AworkError("not-found").description == ""
