"""Queries on the outreach channels beyond the outbox's own: whether a platform, asked, said
the bot may post in one again, and the open requests whose card never reached one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import ScalarSelect
from sqlmodel import Session, col, select

from storage.outbox import UNSENT
from storage.reviews import OPEN
from storage.tables import Card, ChannelCheck, Outbox, Review
from storage.upsert import insert_for

# The key of a card posted again (CARD_AGAIN + "<review id>:<platform>:<failure>", failure the
# outbox id of the card refused for good that it answers): once per refusal, across replicas,
# by the outbox's UNIQUE key. A re-send refused in turn is a refusal of its own, answered by one
# more once the channel takes the bot's messages again.
CARD_AGAIN = "card-again:"
CARD_KINDS = ("card", "card_update")  # either posts the card where it was never posted


@dataclass(frozen=True)
class Owed:
    """An open request whose card never reached the channel."""

    review: Review
    failure_id: int  # its latest card refused for good on the platform: what a re-send answers
    refused_again: int  # how many of its re-sends were refused for good in turn
    last_again_at: datetime | None  # when its latest re-send was queued


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
        values = {"failure_id": failure_id, "verified_at": at}
        upsert = insert_for(self.session)(ChannelCheck).values(
            platform=platform, channel=channel, **values
        )
        self.session.execute(
            upsert.on_conflict_do_update(index_elements=["platform", "channel"], set_=values)
        )

    def cards_owed(self, platform: str, channel: str, *, lock: bool = False) -> list[Owed]:
        """Open requests whose latest card on `platform` failed for good (to this channel or to
        one the outreach channel was before) and was never posted in `channel`, oldest first.
        Not one whose card may have arrived all the same (its answers lost: posted again, it
        could show twice), one with a card message still to go (a re-send queued included: it
        posts the card itself), nor one whose card was posted again (CARD_AGAIN) since that
        failure. A re-send refused for good is that request's latest failure: owed again. With
        `lock`, each is locked for this transaction (PostgreSQL: skipping one another
        transaction is changing)."""
        failure = _latest_failure(platform)
        about = and_(
            col(Outbox.review_id) == col(Review.id),
            col(Outbox.platform) == platform,
            col(Outbox.kind).in_(CARD_KINDS),
        )
        again = and_(about, col(Outbox.key).startswith(CARD_AGAIN))
        unsettled = exists().where(
            about,
            or_(
                col(Outbox.state).in_(UNSENT),
                col(Outbox.maybe_sent),
                and_(again, col(Outbox.state) == "sent", col(Outbox.id) > failure),
            ),
        )
        posted = exists().where(
            col(Card.review_id) == col(Review.id),
            col(Card.platform) == platform,
            col(Card.channel) == channel,
        )
        refused_again = (
            select(func.count())
            .where(again, col(Outbox.state) == "failed", ~col(Outbox.maybe_sent))
            .correlate(Review)
            .scalar_subquery()
        )
        last_again_at = (
            select(func.max(Outbox.created_at)).where(again).correlate(Review).scalar_subquery()
        )
        query = (
            select(Review, failure, refused_again, last_again_at)
            .where(col(Review.state).in_(OPEN), failure.is_not(None), ~unsettled, ~posted)
            .order_by(col(Review.id))
        )
        if lock:
            query = query.with_for_update(of=Review, skip_locked=True)
        return [
            Owed(review, failure_id or 0, refused, last)
            for review, failure_id, refused, last in self.session.exec(query).all()
        ]


def _latest_failure(platform: str) -> ScalarSelect[int | None]:
    """The outbox id of a request's latest card (or card update) on `platform` refused for good,
    and not one that may have arrived: correlated to the enclosing query's Review."""
    failed = aliased(Outbox)
    return (
        select(func.max(failed.id))
        .where(
            failed.review_id == Review.id,
            failed.platform == platform,
            col(failed.kind).in_(CARD_KINDS),
            failed.state == "failed",
            ~col(failed.maybe_sent),
        )
        .correlate(Review)
        .scalar_subquery()
    )
