"""Publishing the App Home tab: 'Waiting for you' for approvers, 'Your requests' for everyone,
naming the slash command as installed (bot/runtime/command.py).

A mixin of `handlers.delivery.courier.Courier`, which holds the Slack client, the services and
the store. Only those who opened the App Home once are kept up to date (`home_users`, as read
at most 10 s ago: one who opened it at another replica is kept up to date here up to 10 s
later). Each home is in its owner's language (`for_person`), whoever's click or sweep
refreshes it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.domain.batches import InviteBatch
from bot.domain.records import InviteRequest
from bot.runtime.command import installed_command
from bot.ui import lists
from handlers.delivery.parts import CourierParts
from handlers.delivery.slack_errors import SEND_ERRORS, slack_error

if TYPE_CHECKING:
    from bot.domain.listing import Listed

log = logging.getLogger("handlers.delivery.courier")


class HomeTabs(CourierParts):
    def publish_home(
        self,
        user_id: str,
        remember: bool = False,
        approvable: list[Listed] | None = None,
    ) -> None:
        """Publish a user's App Home; `remember` marks them as someone who looks at it.
        `approvable`: the approvers' list when the caller has read it already."""
        if not user_id:
            return
        if remember and user_id not in self.store.recent_meta("home_users", []):
            self.store.add_to_meta_set("home_users", user_id)
            self.store.forget_recent("home_users")
        waiting = self.service.waiting(user_id, approvable)  # [] for anyone but an approver
        mine, _, total = self.service.own(user_id, 1, lists.HOME_SHOWN)
        approver, command = self.service.is_approver(user_id), installed_command(self.store)
        try:
            with self.for_person(user_id):
                view = lists.home_view(
                    waiting, mine, approver=approver, command=command, mine_total=total
                )
                self.client.views_publish(user_id=user_id, view=view)
        except SEND_ERRORS as exc:
            log.warning("could not publish the App Home of %s: %s", user_id, slack_error(exc))

    def refresh_homes(self, request: InviteRequest | InviteBatch) -> None:
        """After a request's state shows anew: the homes of its requester and the approvers,
        for those who have opened the App Home at least once."""
        watchers = set(self.store.recent_meta("home_users", []))  # another replica's: soon
        viewers = sorted(({request.requester_id} | self.service.approvers_of(request)) & watchers)
        if not viewers:
            return
        approvable = self.store.approvable_listing()  # one read for all of them
        for user_id in viewers:
            self.publish_home(user_id, approvable=approvable)
