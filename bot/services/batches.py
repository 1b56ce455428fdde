"""Many people in one request: parsing a list, one approval, a rate-limited concurrent run.

A batch is approved (or denied) as a whole by compare-and-set, like a single request. Its run
then turns each entry into an ordinary member request, created once under an id derived from
the batch's, and invites it through `InviteService.invite` - so every member keeps the single
flow's guarantees (one POST, look-before-resend, crash recovery). A run cut off by a crash is
taken over by the next process's sweep; "Retry failed" is a further run, claimed once.
Nothing here knows about Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bot.awork.errors import AworkError
from bot.domain import approval
from bot.domain.batches import BatchStatus, InviteBatch, Prepared, Skipped, Summary
from bot.domain.clock import utcnow
from bot.domain.details import errors_in_words, parse_details
from bot.domain.people import Person
from bot.domain.records import InviteRequest, Status
from bot.domain.text import clean_text
from bot.services.invites import Decision, InviteService, Refusal

log = logging.getLogger(__name__)

ALREADY_MEMBER = "already-exist-error"


class BatchService:
    def __init__(self, service: InviteService, concurrency: int = 16) -> None:
        self.service = service
        self.store = service.store
        self.concurrency = concurrency
        self._stopping = threading.Event()

    # -- asking --------------------------------------------------------------------------------

    def prepare(
        self,
        people: Iterable[Person],
        role_id: str | None = None,
        team_ids: Iterable[str] = (),
        skip_sending_email: bool = False,
    ) -> Prepared:
        """Validate each person with the shared role and teams; leave out members, addresses
        with an open request, and repeats."""
        prepared, seen = Prepared(), set()
        people = list(people)
        open_ids = self.store.open_addresses(person.email for person in people)
        for person in people:
            details, errors = parse_details(
                {
                    "email": person.email,
                    "firstName": person.first_name,
                    "lastName": person.last_name,
                    "roleId": role_id,
                    "teamIds": list(team_ids),
                    "skipSendingEmail": skip_sending_email,
                }
            )
            if details is None:
                where = f"Line {person.line}" if person.line else person.email
                reasons = "; ".join(errors_in_words(errors))
                prepared.errors.append(f"{where}: {reasons}")
                continue
            address = details.email.lower()
            if address in seen:
                prepared.skipped.append(Skipped(email=details.email, reason="repeated"))
                continue
            seen.add(address)
            duplicate = self.duplicate_of(address, open_ids)
            if duplicate is not None:
                prepared.skipped.append(duplicate)
                continue
            prepared.entries.append(details)
        return prepared

    def duplicate_of(
        self, address: str, open_ids: Mapping[str, str] | None = None
    ) -> Skipped | None:
        """Why `address` is left out of a list, if it is. `open_ids`: `Store.open_addresses`,
        looked up once for a whole list."""
        if self.service.catalog.is_member(address):
            return Skipped(email=address, reason="member")
        if open_ids is None:
            open_ids = self.store.open_addresses([address])
        open_id = open_ids.get(address.lower())
        return Skipped(email=address, reason="open", request_id=open_id) if open_id else None

    def submit(
        self, prepared: Prepared, requester_id: str, origin_channel: str | None
    ) -> InviteBatch:
        """Store a new pending batch (before anything else happens)."""
        if not prepared.entries:
            raise ValueError("a batch needs at least one person")
        first = prepared.entries[0]
        catalog = self.service.catalog
        role = catalog.role(first.role_id)
        admin_role = bool(role and role.is_admin_role)
        batch = InviteBatch(
            requester_id=requester_id,
            origin_channel=origin_channel,
            entries=prepared.entries,
            skipped=prepared.skipped,
            role_name=role.name if role else None,
            role_is_admin=admin_role,
            team_names=catalog.team_names(first.team_ids),
            approvals_needed=2 if admin_role else 1,  # one alone when nobody else can decide
        )
        self.store.add(batch)
        self.store.record(
            "batch_submitted",
            batch.id,
            requester_id,
            people=len(batch.entries),
            role=batch.role_name,
        )
        log.info(
            "batch %s stored: %d people (requester %s)", batch.id, len(batch.entries), requester_id
        )
        return batch

    # -- deciding ------------------------------------------------------------------------------

    def approve(self, batch_id: str, approver_id: str, own_allowed: bool = False) -> Decision:
        """Record an approval; the one that completes it claims the batch's first run.
        `Decision.request` is the batch."""
        for _ in range(5):
            checked = self._decidable(batch_id, approver_id, BatchStatus.PENDING)
            if not checked.ok:
                return checked
            current = checked.request
            verdict = approval.decide(current, approver_id, self.service.approvers, own_allowed)
            if verdict.refusal is not None:
                return Decision(current, Refusal(verdict.refusal))  # type: ignore[arg-type]
            approvals = list(verdict.approvals)
            now = utcnow()
            if not verdict.complete:
                changes: dict[str, object] = {"shown_status": None}
                target = BatchStatus.PENDING
            else:
                changes = {"decided_by": approver_id, "decided_at": now, "run": 1}
                target = BatchStatus.RUNNING
            claim = (self.service.instance_id, self.service.work_lease)
            ok, batch = self.store.transition(
                batch_id,
                {BatchStatus.PENDING},
                target,
                require={"approvals": current.approvals},
                claim=claim if target is BatchStatus.RUNNING else None,
                approvals=approvals,
                approval_rule=verdict.rule,
                **changes,
            )
            if ok:
                self.store.record(
                    "batch_approved", batch_id, approver_id, of=current.approvals_needed
                )
                return Decision(batch)
        return Decision(self.store.get_batch(batch_id), Refusal.ALREADY_DECIDED)  # type: ignore[arg-type]

    def _decidable(self, batch_id: str, user_id: str, status: BatchStatus) -> Decision:
        """The batch, if it exists, `user_id` is an approver and it is in `status`; else why not."""
        current = self.store.get_batch(batch_id)
        if current is None:
            return Decision(None, Refusal.NOT_FOUND)
        if not self.service.is_approver(user_id):
            return Decision(current, Refusal.NOT_APPROVER)  # type: ignore[arg-type]
        if current.status is not status:
            return Decision(current, Refusal.ALREADY_DECIDED)  # type: ignore[arg-type]
        return Decision(current)  # type: ignore[arg-type]

    def can_deny(self, batch_id: str, approver_id: str) -> Decision:
        return self._decidable(batch_id, approver_id, BatchStatus.PENDING)

    def deny(self, batch_id: str, approver_id: str, reason: str) -> Decision:
        reason = clean_text(reason, multiline=True)  # the audit log gets it clean too
        decision = self.can_deny(batch_id, approver_id)
        if not decision.ok:
            return decision
        ok, batch = self.store.transition(
            batch_id,
            {BatchStatus.PENDING},
            BatchStatus.DENIED,
            decided_by=approver_id,
            decided_at=utcnow(),
            deny_reason=reason,
        )
        if not ok:
            return Decision(batch, Refusal.ALREADY_DECIDED)
        self.store.record("batch_denied", batch_id, approver_id, reason=reason)
        return Decision(batch)

    def retry_failed(self, batch_id: str, user_id: str, after_run: int | None = None) -> Decision:
        """Claim one more run for the members that failed (not those already in awork).
        `after_run`: the run whose summary showed the button; a button from a run that was
        retried already starts nothing (ALREADY_RETRIED), so each button runs once."""
        checked = self._decidable(batch_id, user_id, BatchStatus.DONE)
        current = checked.request
        if (
            current is not None
            and after_run is not None
            and current.run > after_run  # that button's run was retried already
            and checked.refusal in (None, Refusal.ALREADY_DECIDED)
        ):
            return Decision(current, Refusal.ALREADY_RETRIED)
        if not checked.ok:
            return checked
        summary = self.summary(current)
        if not summary.failed:
            return Decision(current, Refusal.ALREADY_DECIDED)
        ok, batch = self.store.transition(
            batch_id,
            {BatchStatus.DONE},
            BatchStatus.RUNNING,
            require={"run": current.run},  # one claim per run, however many clicks
            claim=(self.service.instance_id, self.service.work_lease),
            run=current.run + 1,
            retrying=len(summary.failed) + summary.waiting,
            outcome_told=False,
        )
        if not ok:
            retried = batch is not None and batch.run != current.run
            return Decision(batch, Refusal.ALREADY_RETRIED if retried else Refusal.ALREADY_DECIDED)
        self.store.record("batch_retried", batch_id, user_id, run=current.run + 1)
        return Decision(batch)

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        batch_id: str,
        claim_id: str | None,
        invitees: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_start: Callable[[], object] | None = None,
    ) -> InviteBatch | None:
        """Invite every entry of a batch this process claimed (RUNNING), concurrently within
        the awork client's rate limit; then mark it DONE. `invitees` maps lower-case emails to
        Slack user ids (they get the invitation by DM), or is called for that map once the
        run's lease is being renewed, like `on_start` (slow Slack work before the first
        member); `on_progress` hears how many entries are settled so far. `claim_id` is the
        claim the caller took (approval, Retry failed, takeover): when it is not the batch's
        any more, the run is someone else's and nothing is done. Returns the batch as stored."""
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
        with self.service._tracked(batch_id):
            try:
                if on_start is not None:
                    on_start()
                people = invitees() if callable(invitees) else (invitees or {})
                try:
                    self.service.workspace_id()  # once, before the workers all want it
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
                workers = max(1, min(self.concurrency, len(todo)))
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
            summary = self.summary(done)
            self.store.record(
                "batch_done",
                batch_id,
                run=batch.run,
                invited=len(summary.invited),
                already=len(summary.already),
                failed=len(summary.failed),
            )
        return done if ok else self.store.get_batch(batch_id)

    def _todo(self, batch: InviteBatch) -> list[int]:
        """The entries a run goes through: all of them in the first run; in a "Retry failed"
        run only those it retries - the failed ones (not those already in awork), any left
        unsettled, and those it settled already when it is taken over - so that its progress
        counts the people being retried ("3 of 5"), which `retrying` holds."""
        if batch.run <= 1 or not batch.retrying:
            return list(range(len(batch.entries)))
        todo = []
        for index, member in enumerate(self.members(batch)):
            if (
                member is None
                or member.batch_run == batch.run
                or member.status in (Status.PENDING, Status.INVITING)
                or (
                    member.status is Status.FAILED
                    and not (member.failure and member.failure.code == ALREADY_MEMBER)
                )
            ):
                todo.append(index)
        return todo

    def _keep_lease(self, batch_id: str, claim_id: str | None, lost: threading.Event) -> None:
        """Renew the run's lease while it runs (every third of its length); when it cannot be
        renewed, the run stops starting members - another instance has it or will."""
        seconds = self.service.work_lease
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
        owner, lease = self.service.instance_id, self.service.work_lease
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
                added = self.store.add(member, claim=(owner, lease))
            except KeyError:  # created meanwhile by another run of this batch
                return
            self.service.invite(member_id, added.claim_id)
            return
        if existing.status is Status.FAILED and existing.batch_run < batch.run:
            if existing.failure is not None and existing.failure.code == ALREADY_MEMBER:
                return
            ok, claimed = self.store.transition(
                member_id,
                {Status.FAILED},
                Status.INVITING,
                require={"batch_run": existing.batch_run},
                claim=(owner, lease),
                failure=None,
                attempts=existing.attempts + 1,
                invite_started_at=existing.invite_started_at or now,
                batch_run=batch.run,
            )
            if ok:
                self.service.invite(member_id, claimed.claim_id)
        elif existing.status is Status.INVITING:
            self._take_over_member(existing)

    def _take_over_member(self, member: InviteRequest) -> None:
        """A member another instance was inviting when the run changed hands: wait for its
        lease to run out (or for it to settle), then look in awork and finish it."""
        while not self._stopping.is_set():
            if self.service.is_active(member.id):
                return  # being settled in this process already
            recovered = self.service.recover(member)
            if recovered is not None:
                return
            current = self.store.get(member.id)
            if current is None or current.status is not Status.INVITING:
                return
            member = current
            wait = 1.0
            if current.claim_until is not None:
                wait = (current.claim_until - self.store.now()).total_seconds()
            time.sleep(min(5.0, max(0.2, wait)))

    def stop(self) -> None:
        """Start no further member (a stopping process); the run is taken over later."""
        self._stopping.set()

    # -- after a crash -------------------------------------------------------------------------

    def take_over(self, batch: InviteBatch) -> InviteBatch | None:
        """Claim a run whose lease expired (its runner crashed or lost the store), by
        compare-and-set on the store's clock; None while the lease runs or if another took it."""
        ok, claimed = self.store.transition(
            batch.id,
            {BatchStatus.RUNNING},
            BatchStatus.RUNNING,
            require={"claim_id": batch.claim_id},
            claim=(self.service.instance_id, self.service.work_lease),
            claim_expired=True,
        )
        if ok:
            self.store.record("batch_recovering", batch.id, previous_owner=batch.claimed_by)
        return claimed if ok else None

    def remind_and_expire(
        self, batches: Iterable[InviteBatch], remind_after: timedelta, expire_after: timedelta
    ) -> list[str]:
        """As for single requests: one stored reminder, then expiry."""
        now, changed = utcnow(), []
        for batch in batches:
            if batch.status is not BatchStatus.PENDING:
                continue
            age = now - batch.created_at
            if age >= expire_after:
                ok, _ = self.store.transition(
                    batch.id, {BatchStatus.PENDING}, BatchStatus.EXPIRED, decided_at=now
                )
            elif age >= remind_after and batch.reminded_at is None:
                ok, _ = self.store.transition(
                    batch.id,
                    {BatchStatus.PENDING},
                    BatchStatus.PENDING,
                    require={"reminded_at": None},
                    reminded_at=now,
                )
            else:
                continue
            if ok:
                self.store.record("batch_expired" if age >= expire_after else "reminded", batch.id)
                changed.append(batch.id)
        return changed

    # -- reading -------------------------------------------------------------------------------

    def members(self, batch: InviteBatch) -> list[InviteRequest | None]:
        found = self.store.read_many([batch.member_id(i) for i in range(len(batch.entries))])
        return [m if isinstance(m, InviteRequest) else None for m in found]

    def summary(self, batch: InviteBatch) -> Summary:
        summary = Summary(already=[s.email for s in batch.skipped if s.reason == "member"])
        for member in self.members(batch):
            if member is None or member.status in (Status.PENDING, Status.INVITING):
                summary.waiting += 1
                continue
            if batch.run > 1 and member.batch_run == batch.run:
                summary.retried += 1
            if member.status is Status.FAILED:
                if member.failure is not None and member.failure.code == ALREADY_MEMBER:
                    summary.already.append(member.details.email)
                else:
                    summary.failed.append(member)
            else:
                summary.invited.append(member)
        return summary

    def visible(self, batch_id: str, user_id: str) -> InviteBatch | None:
        """A batch, if this user may see it: its requester or an approver."""
        batch = self.store.get_batch(batch_id)
        if batch is None:
            return None
        allowed = user_id == batch.requester_id or self.service.is_approver(user_id)
        return batch if allowed else None

    def waiting_for(
        self, approver_id: str, batches: Iterable[InviteBatch] | None = None
    ) -> list[InviteBatch]:
        if not self.service.is_approver(approver_id):
            return []
        if batches is None:
            batches = [b for b in self.store.approvable() if isinstance(b, InviteBatch)]
        candidates = batches
        return sorted(
            (b for b in candidates if b.status is BatchStatus.PENDING), key=lambda b: b.created_at
        )

    def batches_of(
        self, requester_id: str, batches: Iterable[InviteBatch] | None = None
    ) -> list[InviteBatch]:
        if batches is None:
            batches = [b for b in self.store.listed(requester_id) if isinstance(b, InviteBatch)]
        candidates = batches
        return sorted(
            (b for b in candidates if b.requester_id == requester_id),
            key=lambda b: b.created_at,
            reverse=True,
        )
