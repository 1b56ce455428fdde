"""The invite service: one object for the listeners and the Courier, put together from the
single request's concerns, apart from Slack:

- asking (bot/services/asking.py): submitting, duplicates, names awork suggests, asking again
  after a lapse, and the lists;
- deciding (bot/services/decisions.py): approve, deny, retry a failure, remind and expire -
  the decision path batches share;
- inviting exactly once (bot/services/inviting.py): the claim's lease, settling an
  invitation whose answer was lost before anything is sent again, taking over after a crash;
- joining (bot/services/joining.py): accepting from Slack, following an invitation to joined
  or lapsed;
- this process's work leases (bot/services/leases.py).

Each of its names below is one of those parts' own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.awork.client import AworkClient
from bot.domain.settling import Settling
from bot.services.asking import Asking
from bot.services.catalog import Catalog
from bot.services.decisions import Approvers, RequestDecisions
from bot.services.inviting import Inviting
from bot.services.joining import Joining
from bot.services.leases import Work
from bot.services.policy import PolicyGate
from bot.store import Store


class _Part:
    """A name of the service that is one of its parts' own: `submit = _Part("asking")` is
    `service.asking.submit`."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, service: Any, owner: type | None = None) -> Any:
        if service is None:
            return self
        return getattr(getattr(service, self.part), self.name)


class InviteService:
    def __init__(
        self,
        store: Store,
        awork: AworkClient,
        catalog: Catalog,
        approvers: frozenset[str] | Callable[[], frozenset[str]],
        accept_url_template: str,
        workspace_id: str | None = None,
        password_url_template: str | None = None,
        skip_email_for_slack_members: bool = True,
        invite_attempts: int = 3,
        lease_margin: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        instance_id: str | None = None,
        settle_seconds: float = 120.0,
        policy: PolicyGate | None = None,
    ) -> None:
        self.store = store
        self.awork = awork
        self.catalog = catalog
        self.policy = policy or PolicyGate(store)
        self._approvers = Approvers(approvers, self.policy.resolve, self.policy.route_approvers)
        self.work = Work(store, awork, instance_id, lease_margin)
        self.asking = Asking(store, awork, catalog, self._approvers, self.policy, self.work)
        self.decisions = RequestDecisions(store, self._approvers, self.work)
        self.inviting = Inviting(
            store,
            awork,
            self.work,
            accept_url_template,
            workspace_id=workspace_id,
            password_url_template=password_url_template,
            skip_email_for_slack_members=skip_email_for_slack_members,
            invite_attempts=invite_attempts,
            sleep=sleep,
            settling=Settling(window=timedelta(seconds=settle_seconds)),
        )
        self.joining = Joining(store, awork, catalog, self.work)

    @property
    def approvers(self) -> frozenset[str]:
        """Who may approve now: fixed ids, or the current answer of a directory (user groups)."""
        return self._approvers.now()

    def is_approver(self, user_id: str) -> bool:
        """Whether `user_id` decides anything: a default approver, or one of a route's."""
        return user_id in self._approvers

    def is_default_approver(self, user_id: str) -> bool:
        """An approver of INVITE_APPROVERS: they alone get the form's advanced part (a new
        workspace, its plan and seats), which a route's approvers do not."""
        return user_id in self._approvers.now()

    def approvers_of(self, record: Any) -> frozenset[str]:
        """Who decides `record` (a request or a batch): its route's approvers, or the default."""
        return self._approvers.of(record)

    @property
    def instance_id(self) -> str:
        return self.work.instance_id

    @property
    def work_lease(self) -> float:
        return self.work.lease

    ask = _Part("asking")
    duplicate_of = _Part("asking")
    submit = _Part("asking")
    autofill = _Part("asking")
    invite_again = _Part("asking")
    waiting = _Part("asking")
    own = _Part("asking")
    visible_request = _Part("asking")

    approve = _Part("decisions")
    can_deny = _Part("decisions")
    deny = _Part("decisions")
    remind_and_expire = _Part("decisions")

    invite = _Part("inviting")
    recover = _Part("inviting")
    workspace_id = _Part("inviting")
    accept_link = _Part("inviting")
    password_link = _Part("inviting")

    accept = _Part("joining")
    settle_joining = _Part("joining")
    follow_invitations = _Part("joining")

    is_active = _Part("work")
    wait_idle = _Part("work")
