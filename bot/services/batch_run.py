"""A batch's run: each entry becomes an ordinary member request, created once under an id
derived from the batch's, and is invited through `Inviting.invite` - so every member keeps the
single flow's guarantees (one POST, look-before-resend, crash recovery) - concurrently within
the awork client's rate limit, under the run's lease, renewed while it runs. A run cut off by a
crash is taken over (`take_over`) by the next process's sweep; "Retry failed" is a further run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from bot.awork.errors import AworkError
from bot.domain.batches import BatchStatus, InviteBatch, Summary, is_member_already
from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, Status
from bot.services.inviting import Inviting
from bot.services.leases import Work
from bot.store import Store

log = logging.getLogger(__name__)


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
        invitees: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_start: Callable[[], object] | None = None,
    ) -> InviteBatch | None:
        """Invite every entry of a batch this process claimed (RUNNING), `concurrency` at a
        time within the awork client's rate limit; then mark it DONE. `invitees` maps
        lower-case emails to Slack user ids (they get the invitation by DM), or is called for
        that map once the run's lease is being renewed, like `on_start` (slow Slack work
        before the first member); `on_progress` hears how many entries are settled so far.
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
                people = invitees() if callable(invitees) else (invitees or {})
                try:
                    self.inviting.workspace_id()  # once, before the workers all want it
                except AworkError as exc:
                    log.warning("batch %s: workspace id not known (%s)", batch_id, exc.code)

                def one(index: int) -> None:
                    if self._stopping.is_set() or lost.is_set():
                        return
                    try:
                        self._run_member(batch, index, people)
                    except Exception as exc:  # one member's trouble must not stop the others
                        log.error(
                            "batch %s member %d: %s",
                            batch.id,
                            index,
                            type(exc).__name__,
                            exc_info=exc,
                        )
                    with counting:
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
        ok, done = self.store.transition(
            batch_id,
            {BatchStatus.RUNNING},
            BatchStatus.DONE,
            require={"claim_id": batch.claim_id, "run": batch.run},
            finished_at=utcnow(),
            outcome_told=False,
            links_listed=False,
        )
        if ok:
            summary = Summary.of(done, members(self.store, done))
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
        if ok:
            self.store.record("batch_recovering", batch.id, previous_owner=batch.claimed_by)
        return claimed if ok else None

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

    def _run_member(self, batch: InviteBatch, index: int, invitees: Mapping[str, str]) -> None:
        member_id = batch.member_id(index)
        existing = self.store.get(member_id)
        now = utcnow()
        if existing is None:
            entry = batch.entries[index]
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
                attempts=1,
                invite_started_at=now,
                invitee_slack_id=invitees.get(entry.email.lower()),
                batch_run=batch.run,
            )
            try:
                added = self.store.add(member, claim=self.work.claim)
            except KeyError:  # created meanwhile by another run of this batch
                return
            self.inviting.invite(member_id, added.claim_id)
            return
        if existing.status is Status.FAILED and existing.batch_run < batch.run:
            if is_member_already(existing):
                return
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
                self.inviting.invite(member_id, claimed.claim_id)
        elif existing.status is Status.INVITING:
            self._take_over_member(existing)

    def _take_over_member(self, member: InviteRequest) -> None:
        """A member another instance was inviting when the run changed hands: wait for its
        lease to run out (or for it to settle), then look in awork and finish it."""
        while not self._stopping.is_set():
            if self.work.is_active(member.id):
                return  # being settled in this process already
            recovered = self.inviting.recover(member)
            if recovered is not None:
                return
            current = self.store.get(member.id)
            if current is None or current.status is not Status.INVITING:
                return
            member = current
            wait = 1.0
            if current.claim_until is not None:
                wait = (current.claim_until - self.store.now()).total_seconds()
            self._stopping.wait(min(5.0, max(0.2, wait)))
