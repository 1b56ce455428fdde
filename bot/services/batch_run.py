"""A batch's run: each entry becomes an ordinary member request, created once under an id
derived from the batch's, and is invited through `Inviting.invite` - so every member keeps the
single flow's guarantees (one POST, look-before-resend, an unsure answer settled before anything
is sent again, crash recovery) - concurrently within the awork client's rate limit, under the
run's lease, renewed while it runs. A run cut off by a crash is taken over (`take_over`) by the
next process's sweep; "Retry failed" is a further run.

Members still being invited when the others are done - unsure of awork's answer, or held by
another holder's lease - do not keep a thread waiting: the run's lease is set to run out when
the first of them is next due, and a sweep (here or on another instance) takes the run up
again then (`Inviting.recover` for each member that is due), until every member is settled and
the run is done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bot.awork.errors import AworkError
from bot.domain.batches import BatchStatus, InviteBatch, Summary, is_member_already
from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, Status
from bot.services.inviting import Inviting
from bot.services.leases import Work
from bot.store import Store

log = logging.getLogger(__name__)

# A run that pauses for members still being invited is taken up again this long later at the
# soonest, however soon their leases run out.
PAUSE = timedelta(seconds=1)


def members(store: Store, batch: InviteBatch) -> list[InviteRequest | None]:
    """A batch's members by index (None: not created yet), read in one go."""
    found = store.read_many([batch.member_id(i) for i in range(len(batch.entries))])
    return [m if isinstance(m, InviteRequest) else None for m in found]


class BatchRunner:
    def __init__(self, store: Store, inviting: Inviting, work: Work) -> None:
        self.store = store
        self.inviting = inviting
        self.work = work
        self._stopping = threading.Event()

    def run(
        self,
        batch_id: str,
        claim_id: str | None,
        concurrency: int,
        invitees: Mapping[str, str] | Callable[[], Mapping[str, str] | None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_start: Callable[[], object] | None = None,
    ) -> InviteBatch | None:
        """Invite every entry of a batch this process claimed (RUNNING), `concurrency` at a
        time within the awork client's rate limit; then mark it DONE. `invitees` maps
        lower-case emails to Slack user ids (they get the invitation by DM), or is called for
        that map once the run's lease is being renewed, like `on_start` (slow Slack work),
        when the first member is created (answering None when it could not be read whole:
        the members it would have named are marked `invitee_unknown`); `on_progress` hears how many entries are settled so far.
        `claim_id` is the claim the caller took (approval, Retry failed, takeover): when it is
        not the batch's any more, the run is someone else's and nothing is done. Returns the
        batch as stored."""
        batch = self.store.get_batch(batch_id)
        if batch is None or batch.status is not BatchStatus.RUNNING:
            return batch
        if claim_id is None or batch.claim_id != claim_id:
            return batch  # taken over meanwhile (by another instance, or this one's sweep)
        settled = [0]
        counting = threading.Lock()
        waiting: list[InviteRequest] = []  # members not settled in this pass
        lost = threading.Event()
        keeper = threading.Thread(
            target=self._keep_lease,
            args=(batch_id, batch.claim_id, lost),
            name="batch-lease",
            daemon=True,
        )
        keeper.start()
        with self.work.tracked(batch_id):
            try:
                if on_start is not None:
                    on_start()
                people = _Invitees(invitees)
                try:
                    self.inviting.workspace_id()  # once, before the workers all want it
                except AworkError as exc:
                    log.warning("batch %s: workspace id not known (%s)", batch_id, exc.code)

                def one(index: int) -> None:
                    if self._stopping.is_set() or lost.is_set():
                        return
                    member = None
                    try:
                        member = self._run_member(batch, index, people)
                    except Exception as exc:  # one member's trouble must not stop the others
                        log.error(
                            "batch %s member %d: %s",
                            batch.id,
                            index,
                            type(exc).__name__,
                            exc_info=exc,
                        )
                    with counting:
                        if member is not None and member.status is Status.INVITING:
                            waiting.append(member)  # settled later, by a sweep
                            return
                        settled[0] += 1
                        count = settled[0]
                    if on_progress is not None:
                        on_progress(count)

                todo = self._todo(batch)
                workers = max(1, min(concurrency, len(todo)))
                prefix = f"batch-{batch.id[-4:]}"
                with ThreadPoolExecutor(workers, thread_name_prefix=prefix) as pool:
                    list(pool.map(one, todo))
            finally:
                finished = lost.is_set()
                lost.set()  # stops the keeper
                keeper.join()
        if self._stopping.is_set() or finished:
            return self.store.get_batch(batch_id)  # the lease's next holder takes the run over
        if waiting:
            return self._park(batch, waiting)
        # Every member is settled: what the run came to is kept on the batch for the lists.
        summary = Summary.of(batch, members(self.store, batch))
        ok, done = self.store.transition(
            batch_id,
            {BatchStatus.RUNNING},
            BatchStatus.DONE,
            require={"claim_id": batch.claim_id, "run": batch.run},
            finished_at=utcnow(),
            outcome_told=False,
            links_listed=False,
            unsure=0,
            failed=len(summary.failed),
        )
        if ok:
            self.store.record(
                "batch_done",
                batch_id,
                run=batch.run,
                invited=len(summary.invited),
                already=len(summary.already),
                failed=len(summary.failed),
            )
        return done if ok else self.store.get_batch(batch_id)

    def take_over(self, batch: InviteBatch) -> InviteBatch | None:
        """Claim a run whose lease expired (its runner crashed or lost the store), by
        compare-and-set on the store's clock; None while the lease runs or if another took it."""
        ok, claimed = self.store.transition(
            batch.id,
            {BatchStatus.RUNNING},
            BatchStatus.RUNNING,
            require={"claim_id": batch.claim_id},
            claim=self.work.claim,
            claim_expired=True,
        )
        if ok and batch.unsure:
            log.info("batch %s: looking again for members whose awork answer was lost", batch.id)
        elif ok:
            self.store.record("batch_recovering", batch.id, previous_owner=batch.claimed_by)
        return claimed if ok else None

    def _park(self, batch: InviteBatch, waiting: list[InviteRequest]) -> InviteBatch | None:
        """Members are still being invited (unsure of awork's answer, or held by another's
        lease): let the run's lease run out when the first of them is next due, so that a
        sweep takes the run up again then. How many are unsure, the message says."""
        now = self.store.now()
        soonest = max(now + PAUSE, min(m.claim_until or now for m in waiting))
        unsure = sum(1 for m in waiting if m.unsure_since is not None)
        ok, parked = self.store.transition(
            batch.id,
            {BatchStatus.RUNNING},
            BatchStatus.RUNNING,
            require={"claim_id": batch.claim_id, "run": batch.run},
            claim_until=soonest,
            unsure=unsure,
            shown_status=None if unsure != batch.unsure else batch.shown_status,  # say so
        )
        if not ok:
            return self.store.get_batch(batch.id)
        self.work.alarm.set((soonest - now).total_seconds() + 0.05)
        log.info(
            "batch %s: %d members still being invited (%d unsure of awork's answer); "
            "taken up again when the first is due",
            batch.id,
            len(waiting),
            unsure,
        )
        return parked

    def stop(self) -> None:
        """Start no further member (a stopping process); the run is taken over later."""
        self._stopping.set()

    def _todo(self, batch: InviteBatch) -> list[int]:
        """The entries a run goes through: all of them in the first run; in a "Retry failed"
        run only those it retries - the failed ones (not those already in awork), any left
        unsettled, and those it settled already when it is taken over - so that its progress
        counts the people being retried ("3 of 5"), which `retrying` holds."""
        if batch.run <= 1 or not batch.retrying:
            return list(range(len(batch.entries)))
        todo = []
        for index, member in enumerate(members(self.store, batch)):
            if (
                member is None
                or member.batch_run == batch.run
                or member.status in (Status.PENDING, Status.INVITING)
                or (member.status is Status.FAILED and not is_member_already(member))
            ):
                todo.append(index)
        return todo

    def _keep_lease(self, batch_id: str, claim_id: str | None, lost: threading.Event) -> None:
        """Renew the run's lease while it runs (every third of its length); when it cannot be
        renewed, the run stops starting members - another instance has it or will."""
        seconds = self.work.lease
        while not lost.wait(seconds / 3):
            try:
                held = self.store.renew(batch_id, claim_id, seconds)
            except Exception as exc:
                log.warning("batch %s: lease not renewed (%s)", batch_id, type(exc).__name__)
                continue  # the store may be back before the lease runs out
            if not held:
                log.warning("batch %s: lease lost; its new holder runs it", batch_id)
                lost.set()

    def _run_member(
        self, batch: InviteBatch, index: int, invitees: _Invitees
    ) -> InviteRequest | None:
        """Invite one entry, or settle its member when it is due; the member as it stands
        after (None: another run of this batch created it meanwhile)."""
        member_id = batch.member_id(index)
        existing = self.store.get(member_id)
        now = utcnow()
        if existing is None:
            entry = batch.entries[index]
            invitee = invitees.get(entry.email.lower())
            member = InviteRequest(
                id=member_id,
                status=Status.INVITING,
                batch_id=batch.id,
                requester_id=batch.requester_id,
                origin_channel=batch.origin_channel,
                details=entry,
                role_name=batch.role_name,
                role_is_admin=batch.role_is_admin,
                team_names=batch.team_names,
                approvals=batch.approvals,
                approvals_needed=batch.approvals_needed,
                decided_by=batch.decided_by,
                decided_at=batch.decided_at,
                approval_rule=batch.approval_rule,  # the policy's, for an approved domain
                policy_rule=batch.policy_rule,
                route=batch.route,  # its route's approvers see it, as they saw the batch
                route_channel=batch.route_channel,
                route_approvers=batch.route_approvers,
                attempts=1,
                invite_started_at=now,
                invitee_slack_id=invitee,
                invitee_unknown=invitee is None and invitees.unknown,
                batch_run=batch.run,
            )
            try:
                added = self.store.add(member, claim=self.work.claim)
            except KeyError:  # created meanwhile by another run of this batch
                return None
            return self.inviting.invite(member_id, added.claim_id)
        if existing.status is Status.FAILED and existing.batch_run < batch.run:
            if is_member_already(existing):
                return existing
            ok, claimed = self.store.transition(
                member_id,
                {Status.FAILED},
                Status.INVITING,
                require={"batch_run": existing.batch_run},
                claim=self.work.claim,
                failure=None,
                attempts=existing.attempts + 1,
                invite_started_at=existing.invite_started_at or now,
                batch_run=batch.run,
            )
            if ok:
                return self.inviting.invite(member_id, claimed.claim_id)
            return claimed
        if existing.status is Status.INVITING and not self.work.is_active(member_id):
            # Unsure, or left by a run that changed hands: settled once its lease runs out.
            return self.inviting.recover(existing) or self.store.get(member_id)
        return existing


class _Invitees:
    """Invitees' Slack ids by lower-case address, asked for (`source`: a map, or a call that
    makes one, e.g. Slack's users.list, or None when it could not be read whole) only once a
    member is first created: a run taken up again to settle members created before needs
    none. `unknown`: the call could not read it, so an address it lacks may be in Slack."""

    def __init__(
        self, source: Mapping[str, str] | Callable[[], Mapping[str, str] | None] | None
    ) -> None:
        self._source = source
        self._found: Mapping[str, str] | None = None
        self.unknown = False
        self._lock = threading.Lock()

    def get(self, address: str) -> str | None:
        with self._lock:
            if self._found is None:
                source = self._source
                found = source() if callable(source) else (source or {})
                self.unknown = found is None
                self._found = found or {}
        return self._found.get(address)
