"""Issue 5 item 1: the awork sandbox keeps awork's rules, answers in the spec's shapes, serves
them over HTTP (`invite-bot sandbox`), and the bot uses it - labelled - without AWORK_API_KEY."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jsonschema
import pytest

from bot.awork.sandbox import Sandbox
from tests.conftest import APPROVERS, SIGNING_SECRET, approval_request_id, make_settings
from tests.serving import free_port
from tests.slack_requests import SlackDriver

# A copy of ../shared/reference/awork-openapi-subset.json (the published spec's subset), kept in
# the repo so a clone alone can run the tests.
SPEC = json.loads(
    (Path(__file__).parent / "fixtures" / "awork" / "awork-openapi-subset.json").read_text()
)
BASE = "https://api.awork.com/api/v1"


def json_schema(node):
    """OpenAPI 3.0 to JSON Schema: `nullable: true` becomes a null-able type."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
    if node.get("nullable") and "$ref" in node:
        converted = {"anyOf": [{"$ref": node["$ref"]}, {"type": "null"}]}
    return converted


SCHEMAS = json_schema(SPEC["components"]["schemas"])


def check(response: httpx.Response, path: str, method: str = "get") -> None:
    """The answer validates against the spec's schema for this path, method and status."""
    declared = SPEC["paths"][path][method]["responses"][str(response.status_code)]
    schema = (declared.get("content") or {}).get("application/json", {}).get("schema")
    if response.status_code >= 400 and schema is None:
        schema = {"$ref": "#/components/schemas/ErrorResponse"}
    if schema is None:
        assert not response.content
        return
    document = {**json_schema(schema), "components": {"schemas": SCHEMAS}}
    jsonschema.validate(response.json(), document)


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(str(tmp_path / "sandbox.sqlite"), per_second=1000, per_minute=100_000)
    yield box
    box.close()


def call(box: Sandbox, method: str, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(transport=httpx.MockTransport(box.handle), base_url=BASE + "/") as client:
        return client.request(method, path.lstrip("/"), **kwargs)


def invite(box: Sandbox, **body) -> httpx.Response:
    return call(box, "POST", "/invitations", json=body)


def test_every_answer_validates_against_the_spec(sandbox):
    """roles, teams, users (paged), users/me, a user, a workspace, autofill, invitations,
    accept and an error all have the spec's shapes."""
    check(call(sandbox, "GET", "/roles"), "/roles")
    check(call(sandbox, "GET", "/teams"), "/teams")
    users = call(sandbox, "GET", "/users", params={"page": 1, "pageSize": 1000})
    check(users, "/users")
    assert users.headers["aw-totalitems"] == "1"
    me = call(sandbox, "GET", "/users/me")
    check(me, "/users/me")
    check(call(sandbox, "GET", f"/users/{me.json()['id']}"), "/users/{userId}")
    check(call(sandbox, "GET", f"/workspaces/{sandbox.workspace_id}"), "/workspaces/{workspaceId}")
    check(call(sandbox, "GET", "/users/autofill/ada.lovelace@x.com"), "/users/autofill/{email}")
    check(call(sandbox, "GET", "/users/autofill/x@x.com"), "/users/autofill/{email}")
    made = invite(sandbox, email="ada@x.com", workspaceId=sandbox.workspace_id)
    check(made, "/invitations", "post")
    accepted = call(
        sandbox,
        "POST",
        "/invitations/accept",
        json={"invitationCode": made.json()["invitationCode"]},
    )
    check(accepted, "/invitations/accept", "post")
    check(call(sandbox, "GET", "/users/nobody"), "/users/{userId}")


def test_seeded_roles_teams_and_first_user(sandbox):
    """A fresh sandbox has an admin role, a guest role, teams and its owner as a member."""
    roles = {r["name"]: r for r in call(sandbox, "GET", "/roles").json()}
    assert roles["Admin"]["isAdminRole"] and roles["Guest"]["isGuestRole"]
    assert {"Member", "Project Manager"} <= set(roles)
    assert {t["name"] for t in call(sandbox, "GET", "/teams").json()} >= {"Design", "Engineering"}
    [owner] = call(sandbox, "GET", "/users").json()
    assert owner["status"]["invitationAccepted"] is True


def test_every_field_is_accepted_and_validated(sandbox):
    """The full body is taken; each field's rule is enforced as awork's validation-failed."""
    roles = {r["name"]: r["id"] for r in call(sandbox, "GET", "/roles").json()}
    teams = [t["id"] for t in call(sandbox, "GET", "/teams").json()]
    full = invite(
        sandbox,
        email="carla@x.com",
        workspaceId=sandbox.workspace_id,
        invitationFlow="invite",
        roleId=roles["Project Manager"],
        teamIds=teams[:2],
        firstName="Carla",
        lastName="Creative",
        title="Dr.",
        position="Creative Director",
        gender="female",
        password="AC0mplexP@ss",
        skipSendingEmail=True,
        bookedSeats=30,
        connectInviteCode="CONNECT-1234",
    )
    assert full.status_code == 200, full.text
    for body, prop in [
        ({"gender": "robot"}, "Gender"),
        ({"invitationFlow": "teleport"}, "InvitationFlow"),
        ({"roleId": "no-such-role"}, "RoleId"),
        ({"teamIds": ["no-such-team"]}, "TeamIds"),
        ({"password": "short"}, "Password"),
        ({"bookedSeats": 0}, "BookedSeats"),
        ({"planId": "free"}, "PlanId"),  # only without a workspaceId
        ({"email": "not-an-address"}, "Email"),
        ({"connectInviteCode": "!"}, "ConnectInviteCode"),
    ]:
        answer = invite(
            sandbox, **{"email": "x@x.com", "workspaceId": sandbox.workspace_id, **body}
        )
        assert answer.status_code == 400 and answer.json()["code"] == "validation-failed", body
        assert [e["property"] for e in answer.json()["validationErrors"]] == [prop]
    unknown = invite(sandbox, email="x@x.com", favouriteColour="blue")
    assert unknown.json()["code"] == "invalid-model"


def test_no_workspace_id_creates_a_workspace_on_the_free_plan(sandbox):
    """workspaceId unset: a new workspace (free plan unless planId), not the sandbox's own."""
    answer = invite(sandbox, email="founder@x.com", firstName="Fay")
    assert answer.status_code == 200
    workspace = answer.json()["workspace"]
    assert workspace["id"] != sandbox.workspace_id and workspace["name"] == "Fay's workspace"
    paid = invite(sandbox, email="boss@x.com", planId="business")
    assert paid.status_code == 200
    assert len(call(sandbox, "GET", "/users").json()) == 1  # not in the sandbox workspace


def test_members_and_seats_are_refused_as_awork_does(tmp_path):
    """An existing member: already-exist-error; a full workspace: insufficient-seats."""
    box = Sandbox(str(tmp_path / "s.sqlite"), seats=2)
    try:
        ws = box.workspace_id
        assert invite(box, email="owner@sandbox.example", workspaceId=ws).json()["code"] == (
            "already-exist-error"
        )
        assert invite(box, email="one@x.com", workspaceId=ws).status_code == 200
        assert (
            invite(box, email="ONE@x.com", workspaceId=ws).json()["code"] == "already-exist-error"
        )
        assert invite(box, email="two@x.com", workspaceId=ws).json()["code"] == "insufficient-seats"
        assert invite(box, email="two@x.com", workspaceId=ws, bookedSeats=3).status_code == 200
    finally:
        box.close()


def test_codes_are_accepted_once_and_only_for_24_hours(sandbox):
    """accept marks the user as having joined; a second accept or an old code is refused."""
    code = invite(sandbox, email="ada@x.com", workspaceId=sandbox.workspace_id).json()[
        "invitationCode"
    ]
    accept = {"invitationCode": code}
    assert call(sandbox, "POST", "/invitations/accept", json=accept).status_code == 200
    user = next(u for u in call(sandbox, "GET", "/users").json() if u["firstName"] is None)
    assert user["status"]["invitationAccepted"] is True
    again = call(sandbox, "POST", "/invitations/accept", json=accept)
    assert again.json()["code"] == "invalid-operation"
    old = invite(sandbox, email="late@x.com", workspaceId=sandbox.workspace_id).json()
    record = sandbox._invitations[old["invitationCode"]]
    record["issuedAt"] = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    sandbox._invitations[old["invitationCode"]] = record
    late = call(
        sandbox, "POST", "/invitations/accept", json={"invitationCode": old["invitationCode"]}
    )
    assert "expired" in late.json()["description"]


def test_rate_limit_answers_429_with_the_headers(tmp_path):
    """Past the per-second limit: 429 with ratelimit-reset and x-ratelimit-* headers."""
    box = Sandbox(str(tmp_path / "s.sqlite"), per_second=5)
    try:
        answers = [call(box, "GET", "/roles") for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        limited = answers[-1]
        assert limited.headers["ratelimit-reset"] == "1"
        assert limited.headers["x-ratelimit-limit"] == "5"
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert limited.json()["code"] == "rate-limited"
    finally:
        box.close()


def test_state_survives_a_restart(tmp_path):
    """JSON in sqlitedict: the same file gives the same workspace and members."""
    path = str(tmp_path / "s.sqlite")
    first = Sandbox(path)
    ws = first.workspace_id
    invite(first, email="kept@x.com", workspaceId=ws)
    first.close()
    second = Sandbox(path)
    try:
        assert second.workspace_id == ws
        assert len(call(second, "GET", "/users").json()) == 2
    finally:
        second.close()


def test_invite_bot_sandbox_serves_awork_over_http(tmp_path):
    """`invite-bot sandbox --port P` answers at /api/v1 with a Bearer key it was given."""
    port = free_port()
    script = Path(sys.executable).parent / "invite-bot"
    process = subprocess.Popen(
        [str(script), "sandbox", "--port", str(port), "--db", str(tmp_path / "s.sqlite"),
         "--api-key", "k-123"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert "awork sandbox at" in process.stdout.readline()
        url = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 10
        while True:
            try:
                roles = httpx.get(f"{url}/roles", headers={"Authorization": "Bearer k-123"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert roles.status_code == 200 and roles.json()
        assert httpx.get(f"{url}/roles").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_bot_uses_the_sandbox_without_an_api_key_and_says_so(tmp_path, slack):
    """No AWORK_API_KEY: the invitation lands in the sandbox, every message is labelled."""
    from bot.runtime.app import build

    settings = make_settings(tmp_path, slack.url, AWORK_API_KEY="")
    bot = build(settings)
    try:
        assert bot.sandbox is not None and bot.deps.catalog.refresh()
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        driver.command("ada@example.com")
        request_id = approval_request_id(slack)
        slack.wait_for("chat.postEphemeral")
        driver.click("approve_invite", request_id, APPROVERS[0])
        slack.wait_for("chat.update", where=lambda c: "invitation sent" in json.dumps(c.args))
        assert [i["email"] for i in bot.sandbox.invitations()] == ["ada@example.com"]
        sent = [c for c in slack.calls if c.method.startswith("chat.")]
        assert sent and all(
            "sandbox — no real invitation" in json.dumps(c.args, ensure_ascii=False) for c in sent
        )
        help_answer = driver.command("help").body
        assert "sandbox — no real invitation" in help_answer
    finally:
        bot.shutdown(timeout=5)


def test_a_request_cut_off_mid_body_is_never_handled():
    """A client killed while sending (a replica's kill -9 mid-POST): the server answers
    nothing and the half body never reaches the handler - awork would create nothing either."""
    import socket
    import threading

    from bot.awork.sandbox_http import http_server

    seen: list = []
    server = http_server(lambda request: seen.append(request), "127.0.0.1", 0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True
    ).start()
    try:
        with socket.create_connection(server.server_address[:2]) as sock:
            sock.sendall(
                b"POST /api/v1/invitations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                b'{"email": "a'
            )
            sock.shutdown(socket.SHUT_WR)  # the rest never comes
            assert sock.recv(1024) == b""  # closed without an answer
        assert seen == []
    finally:
        server.shutdown()
        server.server_close()
