"""A takeover after a crash settles, never guesses: the holder marks a request `uncertain` right
before its first POST leaves; a takeover of a marked request counts the settle window from the
holder's last send (judged on a fresh read), and one taken over before the mark is sent at once."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.records import Status
from tests import test_settling
from tests.fakes.services import in_process_service
from tests.test_settling import APPROVERS, approved, invite, lease_left, posts

world = test_settling.world  # the same fake awork, store, store clock and service


def test_a_holder_that_died_just_now_is_settled_not_resent_on_one_look(world):
    """The holder took the claim and died, its POST perhaps on the way: the takeover after its
    lease finds nobody yet, so nothing is sent until the window after its last send has passed;
    then one look more and exactly one POST."""
    fake, slow, store, clock, service = world
    request_id = approved(service)  # ... and the approver's process is gone
    store.update(request_id, uncertain=True)  # marked right before its POST left
    sent_by_then = store.now()  # its lease was last renewed here, right before a send
    other = in_process_service(store, APPROVERS, slow, instance_id="two")
    slow.lookups = 0
    clock.advance(other.work.lease + 1)
    request = other.recover(store.get(request_id))
    assert request.status is Status.INVITING and posts(fake) == 0
    assert request.unsure_since == sent_by_then and slow.lookups == 1
    while (held := store.get(request_id)).status is Status.INVITING and posts(fake) == 0:
        assert store.now() < sent_by_then + timedelta(seconds=121), "never sent"
        clock.advance(max(0.0, lease_left(store, request_id)))
        other.recover(held)
    assert store.now() >= sent_by_then + timedelta(seconds=120)
    assert posts(fake) == 1 and store.get(request_id).status is Status.INVITED


def test_a_takeover_judges_the_last_send_on_a_fresh_read(world):
    """The sweep read the request, then its holder renewed the lease for a send and died: the
    takeover on the old read is refused, and one on a fresh read counts from that last send."""
    fake, slow, store, clock, service = world
    request_id = approved(service)
    store.update(request_id, uncertain=True)
    other = in_process_service(store, APPROVERS, slow, instance_id="two")
    clock.advance(other.work.lease + 1)
    stale = store.get(request_id)
    assert store.renew(request_id, stale.claim_id, other.work.lease)  # right before a send
    last_send = store.now()
    clock.advance(other.work.lease + 1)
    assert other.recover(stale) is None and posts(fake) == 0
    request = other.recover(store.get(request_id))
    assert request.unsure_since == last_send and posts(fake) == 0


def test_a_holder_that_died_long_ago_is_invited_after_one_look(world):
    """A takeover long after the holder's last send (the window has passed since): one look
    that finds nobody allows the one POST at once."""
    fake, slow, store, clock, service = world
    request_id = approved(service)
    store.update(request_id, uncertain=True)  # marked right before its POST left
    other = in_process_service(store, APPROVERS, slow, instance_id="two")
    slow.lookups = 0
    clock.advance(other.work.lease + 121)
    request = other.recover(store.get(request_id))
    assert request.status is Status.INVITED and posts(fake) == 1 and slow.lookups == 1
    assert "recovering" in [e.event for e in store.audit() if e.request_id == request_id]


def test_a_holder_that_died_before_its_post_is_invited_at_once(world):
    """The holder died before marking its POST as on its way: nothing can be in awork, so the
    takeover sends at once, without waiting out the window."""
    fake, slow, store, clock, service = world
    request_id = approved(service)
    assert not store.get(request_id).uncertain
    other = in_process_service(store, APPROVERS, slow, instance_id="two")
    clock.advance(other.work.lease + 1)
    request = other.recover(store.get(request_id))
    assert request.status is Status.INVITED and posts(fake) == 1


def test_the_post_is_marked_as_on_its_way_before_it_leaves(world):
    """When the POST reaches awork, the stored request already says it may have been sent."""
    fake, slow, store, _clock, service = world
    request_id = approved(service)
    seen = []
    slow.on_post = lambda: seen.append(store.get(request_id).uncertain)
    invite(service, request_id)
    assert seen == [True] and posts(fake) == 1
