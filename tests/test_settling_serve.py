"""Issue 17, item 2, on the real `invite-bot serve` process: awork slower than AWORK_TIMEOUT
(over loopback HTTP, so the timeout is real) gets each invitation posted once."""

from __future__ import annotations

import json

import pytest

from tests import serving
from tests.conftest import APPROVERS, SIGNING_SECRET
from tests.serving import SHORT_LEASE, free_port, start_server, stop_server, wait_for

pytestmark = pytest.mark.timeout(60)


def test_awork_slower_than_the_timeout_gets_one_post_per_person(tmp_path, env, slack, awork_server):
    """AWORK_TIMEOUT=0.5 and awork takes 0.8 s: both POSTs time out, awork creates both
    invitations all the same, and each is found at the look the sweep makes when it is due
    (the settle window's end, 1.3 s on) - woken for it, long before INVITE_SWEEP_SECONDS. POSTs = people; the messages say awork was
    slow and its answer lost, never a restart or a refusal."""
    fake, _ = awork_server
    # The window starts when the POST times out (0.5 s after it was sent) and awork creates
    # the invitation 0.8 s after it arrived: the look at the window's end comes a second after
    # the invitation exists.
    env.update(
        SHORT_LEASE, AWORK_TIMEOUT="0.5", INVITE_SETTLE_SECONDS="1.3", INVITE_SWEEP_SECONDS="60"
    )
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    try:
        fake.post_delay = 0.8
        emails = ["slow1@example.com", "slow2@example.com"]
        for email in emails:
            assert serving.post_signed(
                port, serving.form_submission(email), SIGNING_SECRET
            ).is_success
        ids = [serving.approval_id_for(slack, email) for email in emails]
        for request_id in ids:
            click = serving.button_click("approve_invite", request_id, APPROVERS[0])
            assert serving.post_signed(port, click, SIGNING_SECRET).is_success

        def invited() -> int:
            updates = [json.dumps(c.args.get("blocks")) for c in slack.of("chat.update")]
            return sum(any(i in u and "invitation sent" in u for u in updates) for i in ids)

        wait_for(lambda: invited() == len(ids), 10, "both invitations to be settled")
        assert len(fake.calls("POST", "/invitations")) == len(emails) == len(fake.invitations)
        texts = slack.texts()
        assert "awork is slow to answer" in texts and "awork's answer was lost" in texts
        assert "restart" not in texts and "refused" not in texts
    finally:
        stop_server(process)
