"""Saying something to one person: a DM, the ephemeral answer where they acted, later news,
rewriting a message the bot posted, and finding a member by email.

A mixin of `handlers.delivery.courier.Courier`, which holds the Slack client. A failed post is
logged and returns None; the caller keeps what is still owed on the record, for a sweep. Later
news goes where the requester asked only when Slack refuses them the DM (`news`).

The caller builds the text in the person's language (`for_person`); these send it in that
language too (the sandbox label is added as it goes), whatever language the caller's thread
speaks. `replace` rewrites a DM for the person who clicked in it: the listener speaks theirs.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from handlers.delivery.parts import CourierParts
from handlers.delivery.slack_errors import SEND_ERRORS, NotKnown, refused, slack_error

log = logging.getLogger("handlers.delivery.courier")

Track = tuple[Any, str]  # the request or batch a message is for, and its kind
GONE = {"channel_not_found"}  # what a post to a DM channel kept from before meets once it is gone


class PrivateNotes(CourierParts):
    def dm(
        self, user_id: str, text: str, blocks: list | None = None, track: Track | None = None
    ) -> tuple[str, str] | None:
        """A direct message from the bot; returns (channel, ts) or None if it failed."""
        try:
            return self.direct(user_id, text, blocks, track)
        except SEND_ERRORS:
            return None

    def direct(
        self, user_id: str, text: str, blocks: list | None = None, track: Track | None = None
    ) -> tuple[str, str]:
        """A direct message from the bot: (channel, ts), or Slack's error (logged) raised, for
        a caller that acts on whether Slack refused it (`slack_errors.refused`). `track`: the
        record and kind it is posted for, with metadata and not twice (`TrackedPosts.post`)."""
        try:
            with self.for_person(user_id):
                kept = self.dm_channels.get(user_id)
                try:
                    return self._to_channel(user_id, kept, text, blocks, track)
                except SlackApiError as exc:
                    if kept is None or slack_error(exc) not in GONE:
                        raise
                # The channel kept for them is gone: opened afresh, posted once more (Slack
                # refused the post, so nothing of it stands).
                self.dm_channels.forget(user_id)
                return self._to_channel(user_id, None, text, blocks, track)
        except SEND_ERRORS as exc:
            self.dm_channels.forget(user_id)  # opened afresh next time
            log.warning("could not DM %s: %s", user_id, slack_error(exc))
            raise

    def _to_channel(
        self,
        user_id: str,
        channel: str | None,
        text: str,
        blocks: list | None,
        track: Track | None,
    ) -> tuple[str, str]:
        """Post in `channel`, or in the DM channel Slack opens for `user_id` (then kept)."""
        if channel is None:
            channel = self.client.conversations_open(users=user_id)["channel"]["id"]
            self.dm_channels.put(user_id, channel)
        if track is not None:
            record, kind = track
            return self.post(record, kind, channel, text, blocks, unfurl_links=False)
        posted = self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False
        )
        return posted["channel"], posted["ts"]

    def tell(
        self,
        user_id: str,
        channel: str | None,
        text: str,
        blocks: list | None = None,
        track: Track | None = None,
    ) -> tuple[str, str] | None:
        """The immediate answer to what someone just did (a refusal, "nothing changed", "your
        request waits"): ephemeral in `channel` when the bot can post there, else a DM."""
        if channel:
            where = self._ephemeral(user_id, channel, text, blocks)
            if where is not None:
                return where
        return self.dm(user_id, text, blocks, track)

    def news(
        self,
        user_id: str,
        channel: str | None,
        text: str,
        blocks: list | None = None,
        track: Track | None = None,
    ) -> tuple[str, str] | None:
        """Later news for a requester - a decision, an invitation's result, a reminder, a
        lapse, an expiry: a DM, which stays and notifies (an ephemeral shows only while they
        are in that channel, and is gone on reload). The text names the channel where they
        asked. Only if Slack refuses them the DM (deactivated, not taking the bot's messages),
        the ephemeral there; when Slack only fails for now, or refuses both, a sweep retries.
        Never for a text with an acceptance link or code: those go by DM or nowhere."""
        try:
            return self.direct(user_id, text, blocks, track)
        except SEND_ERRORS as exc:
            if channel and refused(exc):
                return self._ephemeral(user_id, channel, text, blocks)
            return None

    def _ephemeral(
        self, user_id: str, channel: str, text: str, blocks: list | None
    ) -> tuple[str, str] | None:
        try:
            with self.for_person(user_id):
                posted = self.client.chat_postEphemeral(
                    channel=channel, user=user_id, text=text, blocks=blocks
                )
            return channel, str(posted.get("message_ts") or "")
        except SEND_ERRORS as exc:
            log.info("ephemeral to %s in %s failed: %s", user_id, channel, slack_error(exc))
            return None

    def replace(self, channel: str, ts: str, text: str, blocks: list | None = None) -> bool:
        """Rewrite a message the bot posted (a DM whose button has done its work)."""
        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks or [])
            return True
        except SEND_ERRORS as exc:
            log.warning("could not update message %s in %s: %s", ts, channel, slack_error(exc))
            return False

    def slack_user(self, address: str) -> str | None:
        """The Slack member with this email, if there is one - None also when Slack did not say
        (awork's own email then reaches them; `slack_member` is asked again before their link
        goes to anyone else)."""
        try:
            return self.slack_member(address)
        except NotKnown:
            return None

    def slack_member(self, address: str) -> str | None:
        """The active Slack member with this email, or None when Slack says there is none
        (needs users:read.email); raises `NotKnown` when Slack did not answer that."""
        try:
            user = self.client.users_lookupByEmail(email=address)["user"]
        except SEND_ERRORS as exc:
            if slack_error(exc) == "users_not_found":
                return None
            log.warning("users.lookupByEmail failed: %s", slack_error(exc))
            raise NotKnown(slack_error(exc)) from None
        if user.get("deleted") or user.get("is_bot"):
            return None
        return user.get("id")
