"""Queries on the outreach channels beyond the outbox's own: whether a platform, asked, said
the bot may post in one again, and the open requests whose card never reached one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.outbox import UNSENT
from storage.reviews import OPEN
from storage.tables import Card, ChannelCheck, Outbox, Review

# The key of a card posted again (CARD_AGAIN + "<review id>:<platform>"): once per request
# and platform, across replicas, by the outbox's UNIQUE key.
CARD_AGAIN = "card-again:"
CARD_KINDS = ("card", "card_update")  # either posts the card where it was never posted


class ChannelStore:
    def __init__(self, session: Session):
        self.session = session

    def answered_failure(self, platform: str, channel: str) -> int | None:
        """The outbox id of the channel's failed message its platform has since said the bot
        may post after (ChannelCheck); None if it never has."""
        query = select(ChannelCheck.failure_id).where(
            ChannelCheck.platform == platform, ChannelCheck.channel == channel
        )
        return self.session.exec(query).first()

    def verified(self, platform: str, channel: str, *, failure_id: int, at: datetime) -> None:
        """Record that the platform says the bot may post in `channel` again, since its failed
        message `failure_id`. Two replicas recording it at once both succeed."""
        postgres = self.session.get_bind().dialect.name == "postgresql"
        values = {"failure_id": failure_id, "verified_at": at}
        upsert = (pg_insert if postgres else sqlite_insert)(ChannelCheck).values(
            platform=platform, channel=channel, **values
        )
        self.session.execute(
            upsert.on_conflict_do_update(index_elements=["platform", "channel"], set_=values)
        )

    def cards_owed(self, platform: str, channel: str, *, lock: bool = False) -> Sequence[Review]:
        """Open requests whose card failed for good on `platform` (to this channel or to one
        the outreach channel was before) and was never posted in `channel`, oldest first.
        Not one whose card may have arrived all the same (its answers lost: posted again, it
        could show twice), one with a card message still to go (it posts the card itself), nor
        one whose card was posted again already (CARD_AGAIN). With `lock`, each is locked
        for this transaction (PostgreSQL: skipping one another transaction is changing)."""
        about = and_(
            col(Outbox.review_id) == col(Review.id),
            col(Outbox.platform) == platform,
            col(Outbox.kind).in_(CARD_KINDS),
        )
        failed = exists().where(about, col(Outbox.state) == "failed", ~col(Outbox.maybe_sent))
        unsettled = exists().where(
            about,
            or_(
                col(Outbox.state).in_(UNSENT),
                col(Outbox.maybe_sent),
                col(Outbox.key).startswith(CARD_AGAIN),
            ),
        )
        posted = exists().where(
            col(Card.review_id) == col(Review.id),
            col(Card.platform) == platform,
            col(Card.channel) == channel,
        )
        query = (
            select(Review)
            .where(col(Review.state).in_(OPEN), failed, ~unsettled, ~posted)
            .order_by(col(Review.id))
        )
        if lock:
            query = query.with_for_update(of=Review, skip_locked=True)
        return self.session.exec(query).all()
