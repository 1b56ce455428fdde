"""Many people in one request: a list checked and stored, one approval, a run, "Retry failed".

A batch is approved (or denied) as a whole by the decision path single requests take
(bot/services/decisions.py); its run (bot/services/batch_run.py) then invites each person as
an ordinary member request. Nothing here knows about Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.domain.batches import BatchStatus, InviteBatch, Prepared, Skipped, Summary
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails, errors_in_words, parse_details
from bot.domain.people import Person
from bot.domain.policy import Ruling
from bot.domain.records import InviteRequest
from bot.i18n import _
from bot.services.asking import Turned, approved_by_policy, refused, routed
from bot.services.batch_run import BatchRunner, members
from bot.services.decisions import BatchDecisions, Decision, Refusal
from bot.services.invites import InviteService

log = logging.getLogger(__name__)


@dataclass
class AskedMany:
    """What came of asking for a list: the batches stored (one per route of the policy, and
    one for approved domains), what was left out and why, or why nothing was asked at all."""

    prepared: Prepared
    batches: list[InviteBatch] = field(default_factory=list)
    turned: Turned | None = None


class BatchService:
    def __init__(self, service: InviteService, concurrency: int = 16) -> None:
        self.service = service
        self.store = service.store
        self.catalog = service.catalog
        self.concurrency = concurrency
        self.decisions = BatchDecisions(self.store, service.decisions.approvers, service.work)
        self.runner = BatchRunner(self.store, service.inviting, service.work)

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
                reasons = "; ".join(errors_in_words(errors))
                prepared.errors.append(
                    _("Line {line}: {reasons}", line=person.line, reasons=reasons)
                    if person.line
                    else f"{person.email}: {reasons}"
                )
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
        looked up once for a whole list; an address one of ours invited (or that joined) is
        in awork already."""
        if self.catalog.is_member(address):
            return Skipped(email=address, reason="member")
        if open_ids is None:
            open_ids = self.store.open_addresses([address])
        open_id = open_ids.get(address.lower())
        if not open_id:
            return None
        held = self.store.read(open_id)
        if held is not None and not held.is_open:
            return Skipped(email=address, reason="member", request_id=open_id)
        return Skipped(email=address, reason="open", request_id=open_id)

    def ask(
        self,
        people: Iterable[Person],
        requester_id: str,
        origin_channel: str | None,
        role_id: str | None = None,
        team_ids: Iterable[str] = (),
        skip_sending_email: bool = False,
    ) -> AskedMany:
        """A list asked for: who may ask, each person checked (`prepare`) and judged by the
        policy (a blocked domain is left out), the daily limit (the part beyond it is left
        out), then one batch stored per route - approved domains in one of their own, approved
        by the policy - before anything else happens."""
        gate = self.service.policy
        if not gate.may_ask(requester_id):
            turned = Turned("not_requester", ask_instead=self.service.approvers)
            return AskedMany(Prepared(), turned=turned)
        team_ids = list(team_ids)
        prepared = self.prepare(people, role_id, team_ids, skip_sending_email)
        if prepared.errors or not prepared.entries:
            return AskedMany(prepared)
        role = self.catalog.role(role_id)
        team_names = self.catalog.team_names(team_ids)
        kept: list[tuple[InviteDetails, Ruling]] = []
        for details in prepared.entries:
            ruling = gate.judge(
                details.email,
                role.name if role else None,
                bool(role and role.is_admin_role),
                team_names,
                origin_channel,
            )
            if ruling.why == "role_not_on_route":  # the role is everyone's: nobody is asked
                gate.refused(requester_id, ruling.rule, people=len(prepared.entries))
                return AskedMany(prepared, turned=refused(ruling))
            if ruling.outcome == "refused":
                prepared.skipped.append(Skipped(email=details.email, reason="blocked"))
            else:
                kept.append((details, ruling))
        blocked = sum(1 for s in prepared.skipped if s.reason == "blocked")
        if blocked:
            gate.refused(requester_id, "blocked_domains", people=blocked)
        limited = gate.take(requester_id, len(kept))
        if limited.granted < len(kept):
            gate.refused(requester_id, "daily_limit", people=len(kept) - limited.granted)
        for details, _ruling in kept[limited.granted :]:
            prepared.skipped.append(Skipped(email=details.email, reason="daily_limit"))
        kept = kept[: limited.granted]
        if not kept:  # all blocked, or over the limit: nothing to store
            over = any(s.reason == "daily_limit" for s in prepared.skipped)
            turned = Turned("daily_limit", rule="daily_limit", resets_at=limited.resets_at)
            return AskedMany(prepared, turned=turned if over else None)
        groups: dict[tuple[str, str], list[tuple[InviteDetails, Ruling]]] = {}
        for details, ruling in kept:
            groups.setdefault((ruling.outcome, ruling.rule), []).append((details, ruling))
        asked = AskedMany(prepared)
        # Those the approvers see first: the left-out people are said with them.
        ordered = sorted(groups.values(), key=lambda group: group[0][1].outcome != "asked")
        for number, group in enumerate(ordered):
            part = Prepared(
                entries=[details for details, _ruling in group],
                skipped=prepared.skipped if number == 0 else [],  # said once
            )
            asked.batches.append(self.submit(part, requester_id, origin_channel, group[0][1]))
        return asked

    def submit(
        self,
        prepared: Prepared,
        requester_id: str,
        origin_channel: str | None,
        ruling: Ruling | None = None,
    ) -> InviteBatch:
        """Store a new batch (before anything else happens): pending, or - approved by the
        policy - with its first run claimed by this process (a crash leaves it to the sweep)."""
        if not prepared.entries:
            raise ValueError("a batch needs at least one person")
        first = prepared.entries[0]
        role = self.catalog.role(first.role_id)
        admin_role = bool(role and role.is_admin_role)
        batch = InviteBatch(
            requester_id=requester_id,
            origin_channel=origin_channel,
            entries=prepared.entries,
            skipped=prepared.skipped,
            role_name=role.name if role else None,
            role_is_admin=admin_role,
            team_names=self.catalog.team_names(first.team_ids),
            approvals_needed=2 if admin_role else 1,  # one alone when nobody else can decide
            **routed(ruling),
        )
        auto = ruling is not None and ruling.outcome == "approved"
        if auto:
            batch = batch.model_copy(
                update=approved_by_policy(utcnow(), BatchStatus.RUNNING, run=1)
            )
        batch = self.store.add(batch, claim=self.service.work.claim if auto else None)
        self.store.record(
            "batch_submitted",
            batch.id,
            requester_id,
            people=len(batch.entries),
            role=batch.role_name,
            **({"policy": batch.policy_rule} if batch.policy_rule else {}),
        )
        if auto:
            self.store.record(
                "batch_approved", batch.id, None, rule="policy", policy=batch.policy_rule
            )
        log.info(
            "batch %s stored: %d people (requester %s)", batch.id, len(batch.entries), requester_id
        )
        return batch

    # -- deciding ------------------------------------------------------------------------------

    def approve(
        self, batch_id: str, approver_id: str, own_allowed: bool = False
    ) -> Decision[InviteBatch]:
        """Record an approval; the one that completes it claims the batch's first run."""
        return self.decisions.approve(batch_id, approver_id, own_allowed)

    def can_deny(self, batch_id: str, approver_id: str) -> Decision[InviteBatch]:
        return self.decisions.can_deny(batch_id, approver_id)

    def deny(self, batch_id: str, approver_id: str, reason: str) -> Decision[InviteBatch]:
        return self.decisions.deny(batch_id, approver_id, reason)

    def remind_and_expire(
        self, batches: Iterable[InviteBatch], remind_after: timedelta, expire_after: timedelta
    ) -> list[str]:
        """As for single requests: one stored reminder, then expiry."""
        return self.decisions.remind_and_expire(batches, remind_after, expire_after)

    def retry_failed(
        self, batch_id: str, user_id: str, after_run: int | None = None
    ) -> Decision[InviteBatch]:
        """Claim one more run for the members that failed (not those already in awork).
        `after_run`: the run whose summary showed the button; a button from a run that was
        retried already starts nothing (ALREADY_RETRIED), so each button runs once."""
        checked = self.decisions.decidable(batch_id, user_id, BatchStatus.DONE)
        current = checked.request
        if (
            current is not None
            and after_run is not None
            and current.run > after_run  # that button's run was retried already
            and checked.refusal in (None, Refusal.ALREADY_DECIDED)
        ):
            return Decision(current, Refusal.ALREADY_RETRIED)
        if current is None or not checked.ok:
            return checked
        summary = self.summary(current)
        if not summary.failed:
            return Decision(current, Refusal.ALREADY_DECIDED)
        ok, batch = self.store.transition(
            batch_id,
            {BatchStatus.DONE},
            BatchStatus.RUNNING,
            require={"run": current.run},  # one claim per run, however many clicks
            claim=self.service.work.claim,
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
        invitees: Mapping[str, str] | Callable[[], Mapping[str, str] | None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        on_start: Callable[[], object] | None = None,
    ) -> InviteBatch | None:
        """Run a batch under the claim `claim_id` this process took (`BatchRunner.run`),
        `concurrency` members at a time."""
        return self.runner.run(
            batch_id, claim_id, self.concurrency, invitees, on_progress, on_start
        )

    def take_over(self, batch: InviteBatch) -> InviteBatch | None:
        return self.runner.take_over(batch)

    def stop(self) -> None:
        self.runner.stop()

    # -- reading -------------------------------------------------------------------------------

    def members(self, batch: InviteBatch) -> list[InviteRequest | None]:
        return members(self.store, batch)

    def summary(self, batch: InviteBatch) -> Summary:
        return Summary.of(batch, self.members(batch))

    def visible(self, batch_id: str, user_id: str) -> InviteBatch | None:
        """A batch, if this user may see it: its requester or an approver."""
        batch = self.store.get_batch(batch_id)
        if batch is None:
            return None
        allowed = user_id == batch.requester_id or user_id in self.service.approvers_of(batch)
        return batch if allowed else None
