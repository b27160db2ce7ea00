"""Queries on the outbox and on where cards were posted."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    all_,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    or_,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage.tables import Card, Outbox

UNSENT = ("pending", "sending")
# A row about no request, in the due query's grouping by request: never a review's id, and an
# equality (which PostgreSQL can hash) where IS NOT DISTINCT FROM could only be looped over.
NO_REVIEW = -1
T = TypeVar("T")

# Two lanes. A card update or thread line only repeats what the card already shows, and a new
# card or a channel notice waits behind the people being paged; everything else (direct
# messages, escalation pings to a channel, any other destination kind) is urgent.
NOT_URGENT = ("card", "card_update", "thread", "channel")
URGENT = or_(col(Outbox.kind).not_in(NOT_URGENT), col(Outbox.key).startswith("esc:"))


def _both(build: Callable[[bool], T]) -> dict[bool, T]:
    """`build(postgres)` for SQLite (False) and for PostgreSQL (True), each built once."""
    return {postgres: build(postgres) for postgres in (False, True)}


def _among(column: Any, name: str, postgres: bool, *, among: bool = True) -> ColumnElement[bool]:
    """`column` is (or with among=False is not) one of the list bound as :name.

    On PostgreSQL the list is bound as one array. Expanded into a parameter per item (a busy
    drainer holds a hundred rows), the statement's text changed with every claim, so neither
    SQLAlchemy nor psycopg could reuse what they had made of it: 1.5 ms more CPU a statement.
    SQLite has no arrays, and there the expansion costs next to nothing."""
    if postgres:
        items = bindparam(name, type_=ARRAY(column.type))
        return column == any_(items) if among else column != all_(items)
    expanded: BindParameter[Any] = bindparam(name, expanding=True)
    return column.in_(expanded) if among else column.not_in(expanded)


def _due_statement(postgres: bool, *where: Any) -> SelectOfScalar[Outbox]:
    """Unsent rows due at :now to :platforms, oldest first, at most :limit, locked (others'
    locked rows skipped); built once, as building it took 1.5 ms of CPU each claim, twice a
    claim, four claims a second per replica while idle.

    A row is held back by an earlier unsent row to the same destination that is not due (a
    drainer holds it, or it waits to retry): filtered here, before the LIMIT, so a long queue
    behind one failing destination cannot crowd out everyone else's messages. A person's direct
    messages about different requests need no order between them, and a killed replica's lease
    must not hold up their every later ping: another drainer's hold on one (not this drainer's,
    :held) holds back only those about the same request. One waiting to retry still holds back
    all of theirs (a 429 is for the conversation).

    The rows not due are few (those held, those waiting to retry), so each destination's first
    such row is found once, by kind of hold, and every due row compared with it. Asked of each
    due row in turn (NOT EXISTS), the cost grew with the queue times the rows held: with two
    thousand queued on PostgreSQL a claim took 90 ms, and a backlog drained at 30 messages a
    second. Only with held-back rows spread over hundreds of destinations is this slower than
    that was on PostgreSQL: up to 1.5x, until the table is first analyzed (docs/performance.md).
    """
    now: BindParameter[datetime] = bindparam("now")
    waiting = (
        sa_select(
            col(Outbox.id),
            col(Outbox.platform),
            col(Outbox.address),
            col(Outbox.kind),
            col(Outbox.state),
            func.coalesce(col(Outbox.review_id), NO_REVIEW).label("review"),
        )
        .where(col(Outbox.state).in_(UNSENT), col(Outbox.next_attempt_at) > now)
        .cte("waiting")
    )
    destination = (waiting.c.platform, waiting.c.address)
    # One waiting to retry, one not a direct message, or one this drainer holds holds back
    # every later row to its destination, direct messages too; any other (another drainer's
    # hold on a direct message) holds back only what is not a direct message, and that
    # request's own later direct messages.
    holds_all = or_(
        waiting.c.state == "pending",
        waiting.c.kind != "direct",
        _among(waiting.c.id, "held", postgres),
    )
    first = (
        sa_select(
            *destination,
            func.min(waiting.c.id).label("any"),
            func.min(case((holds_all, waiting.c.id))).label("all"),
        )
        .group_by(*destination)
        .cte("first")
    )
    first_same = (
        sa_select(*destination, waiting.c.review, func.min(waiting.c.id).label("any"))
        .where(~holds_all)
        .group_by(*destination, waiting.c.review)
        .cte("first_same")
    )

    def at(table: Any, *also: Any) -> Any:
        return and_(
            table.c.platform == col(Outbox.platform),
            table.c.address == col(Outbox.address),
            *also,
        )

    def before(first_id: Any) -> ColumnElement[bool]:
        return or_(first_id.is_(None), col(Outbox.id) < first_id)

    direct = col(Outbox.kind) == "direct"
    return (
        select(Outbox)
        .outerjoin(first, at(first))
        .outerjoin(
            first_same,
            at(first_same, first_same.c.review == func.coalesce(col(Outbox.review_id), NO_REVIEW)),
        )
        .where(
            col(Outbox.state).in_(UNSENT),
            col(Outbox.next_attempt_at) <= now,
            col(Outbox.platform).in_(bindparam("platforms", expanding=True)),
            # Never one this drainer holds, though its lease ran out while the loop that
            # renews it waited for the database: a worker is sending it right now.
            # (The same ids as :held, bound apart: one expanding parameter renders an empty
            # list one way for IN and NOT IN alike.)
            _among(col(Outbox.id), "own", postgres, among=False),
            or_(direct, before(first.c.any)),
            or_(~direct, and_(before(first.c.all), before(first_same.c.any))),
            *where,
        )
        .order_by(col(Outbox.id))
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True, of=Outbox)
    )


def _enqueue_statement(postgres: bool) -> Any:
    """Queue a message (bound values: key, review_id, platform, kind, address, payload, at)
    unless its key was queued before; built once, as building it was half its CPU."""
    insert = pg_insert if postgres else sqlite_insert
    return (
        insert(Outbox)
        .values(
            key=bindparam("key"),
            review_id=bindparam("review_id"),
            platform=bindparam("platform"),
            kind=bindparam("kind"),
            address=bindparam("address"),
            payload=bindparam("payload"),
            state="pending",
            attempts=0,
            created_at=bindparam("at"),
            next_attempt_at=bindparam("at"),
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(col(Outbox.id))
    )


ENQUEUE = _both(_enqueue_statement)
ANY_DUE = (
    select(Outbox.id)
    .where(
        col(Outbox.state).in_(UNSENT),
        col(Outbox.next_attempt_at) <= bindparam("now"),
        col(Outbox.platform).in_(bindparam("platforms", expanding=True)),
    )
    .limit(1)
)
# Built once: building it cost a fifth of the drain's CPU.
MARK_SENT = _both(
    lambda postgres: (
        update(Outbox)
        .where(_among(col(Outbox.id), "ids", postgres))
        .values(
            state="sent",
            sent_at=bindparam("at"),
            message_id=bindparam("sent_as"),
            last_error=None,
            maybe_sent=False,  # it went: nothing is in doubt
            follow_up_at=case((col(Outbox.follow_up_at).is_(None), None), else_=bindparam("at")),
        )
    )
)
MOVE_CARD = (
    update(Card)
    .where(
        col(Card.review_id) == bindparam("card_review"),
        col(Card.platform) == bindparam("card_platform"),
        col(Card.channel) == bindparam("card_channel"),
    )
    .values(message_id=bindparam("card_message"))
)
DUE_URGENT = _both(lambda postgres: _due_statement(postgres, URGENT))
DUE_OTHERS = _both(
    lambda postgres: _due_statement(
        postgres, _among(col(Outbox.id), "taken", postgres, among=False)
    )
)
# Rows due to one of :addresses, up to :last: whether an earlier one another drainer holds (or
# one waiting to retry) holds a claimed row back.
QUEUED = _both(
    lambda postgres: (
        sa_select(
            col(Outbox.id),
            col(Outbox.platform),
            col(Outbox.address),
            col(Outbox.kind),
            col(Outbox.review_id),
            col(Outbox.state),
        )
        .where(
            col(Outbox.state).in_(UNSENT),
            _among(col(Outbox.address), "addresses", postgres),
            col(Outbox.id) <= bindparam("last"),
        )
        .order_by(col(Outbox.id))
    )
)
# Claim :ids until :until. One whose lease ran out mid-send (still "sending") may have gone.
CLAIM = _both(
    lambda postgres: (
        update(Outbox)
        .where(_among(col(Outbox.id), "ids", postgres))
        .values(
            maybe_sent=case((col(Outbox.state) == "sending", True), else_=col(Outbox.maybe_sent)),
            state="sending",
            attempts=col(Outbox.attempts) + 1,
            next_attempt_at=bindparam("until"),
            claimed_by=bindparam("by"),
        )
    )
)
FLAG_MAYBE_SENT = _both(
    lambda postgres: (
        update(Outbox)
        .where(_among(col(Outbox.id), "ids", postgres))
        .values(maybe_sent=bindparam("flag"))
    )
)
RENEW = _both(
    lambda postgres: (
        update(Outbox)
        .where(_among(col(Outbox.id), "ids", postgres), col(Outbox.state) == "sending")
        .values(next_attempt_at=bindparam("until"))
    )
)


def _handed_back() -> dict[str, Any]:
    """A claimed row given back: due at :now, the attempt uncounted, held by no drainer."""
    return {
        "state": "pending",
        "next_attempt_at": bindparam("now"),
        "attempts": case((col(Outbox.attempts) > 0, col(Outbox.attempts) - 1), else_=0),
        "claimed_by": None,
    }


def _release(postgres: bool, *, own: bool) -> Any:
    """Give back claimed :ids (with `own`, only those the drainer :by still holds)."""
    where = [_among(col(Outbox.id), "ids", postgres), col(Outbox.state) == "sending"]
    if own:
        where.append(col(Outbox.claimed_by) == bindparam("by"))
    return update(Outbox).where(*where).values(**_handed_back())


# Hand claimed :ids back, due at :now, the attempt uncounted.
RELEASE = _both(lambda postgres: _release(postgres, own=False))
# The same, for rows the drainer :by still holds: a drainer stalled past its lease must not hand
# back a row another drainer has claimed since (and may be sending).
RELEASE_OWN = _both(lambda postgres: _release(postgres, own=True))
# Hand back what the dead drainer :by still holds, in one statement (a row another drainer has
# claimed since carries its name, not :by), looked for before it goes again, since it may have
# arrived.
HAND_BACK = (
    update(Outbox)
    .where(col(Outbox.state) == "sending", col(Outbox.claimed_by) == bindparam("by"))
    .values(**_handed_back(), maybe_sent=True)
    .returning(col(Outbox.id))
)


def lane(row: Outbox) -> int:
    """0 for an URGENT row, 1 for the rest; for a row already read."""
    return 1 if row.kind in NOT_URGENT and not row.key.startswith("esc:") else 0


def in_lanes(rows: Sequence[Outbox]) -> list[Outbox]:
    """`rows` urgent lane first, yet each destination's still in the order they were queued:
    a destination's rows fill, in id order, the places its rows hold in lane order."""
    queues: dict[tuple[str, str], deque[Outbox]] = defaultdict(deque)
    for row in sorted(rows, key=lambda r: r.id or 0):
        queues[(row.platform, row.address)].append(row)
    ordered = sorted(rows, key=lambda r: (lane(r), r.id or 0))
    return [queues[(row.platform, row.address)].popleft() for row in ordered]


class OutboxStore:
    def __init__(self, session: Session):
        self.session = session

    def enqueue(
        self,
        *,
        key: str,
        platform: str,
        kind: str,
        address: str,
        payload: str,
        at: datetime,
        review_id: int | None = None,
    ) -> bool:
        """Queue a message once: False (and nothing written) if `key` was queued before."""
        values = {
            "key": key,
            "review_id": review_id,
            "platform": platform,
            "kind": kind,
            "address": address,
            "payload": payload,
            "at": at,
        }
        # RETURNING, not rowcount: psycopg reports -1 for a skipped ON CONFLICT insert.
        return self._core(ENQUEUE[self._postgres], values).first() is not None

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _core(self, statement: Any, values: dict[str, Any] | None = None) -> Any:
        """Run an INSERT or UPDATE on this transaction's connection, past the ORM: for the
        statements every message makes (queued, sent, its lease renewed) the ORM's layer was
        40% of their CPU.
        Nothing the session holds unflushed may matter to `statement` (a review a message
        names has its id, so it is flushed already), and no loaded row is refreshed."""
        return self.session.connection().execute(statement, values)

    def claim(
        self,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        platforms: Sequence[str],
        held: Collection[int] = (),
        due_by: datetime | None = None,
        strict: bool = False,
        by: str | None = None,
    ) -> Sequence[Outbox]:
        """Due messages: up to `limit` urgent ones and up to `limit` oldest ones, sent urgent
        first (in_lanes), each destination's in the order they were queued. Due means due at
        `due_by` (default `now`): a standby drainer takes only what has waited a while.

        A message is claimed only with every earlier unsent message to its destination (so it
        waits behind one another drainer holds, or one waiting to retry), except that a direct
        message waits for another drainer's hold (not one in `held`, this drainer's) only if
        that is about the same request. Claimed rows are leased: if this process dies
        mid-send, another claims them once the lease runs out. A row in `held` is never
        claimed again by its own drainer, even once its lease has run out. `strict`: a direct
        message waits for every other drainer's hold to its address too (the bot's standby
        beside its sender process, which sends the rest in order meanwhile). `by` names the
        drainer (release_all_sending).
        """
        # The oldest are always taken too: an urgent ping queued behind a card to the same
        # channel can only go once that card has, so it must never crowd the card out.
        due_at = now if due_by is None else due_by
        due = list(self._due(due_at, platforms, limit, held))
        due += self._due(due_at, platforms, limit, held, taken=[r.id or 0 for r in due])
        if not due:
            return []
        # Earlier unsent messages that are due but locked by another drainer still hold back
        # theirs: take each stream's messages only up to the first one that is not ours.
        queued = self._core(
            QUEUED[self._postgres],
            {
                "addresses": sorted({row.address for row in due}),
                "last": max(row.id or 0 for row in due),
            },
        ).all()
        mine = {row.id for row in due}
        blocked: set[tuple[str, ...]] = set()
        claimable: set[int | None] = set()
        for row_id, platform, address, kind, review_id, state in queued:
            # A row's stream: for a direct message, those about the same request; for any
            # other kind, the other kinds to the same address (review id "", never a request's).
            # Behind another drainer's hold on a direct message (perhaps a dead one's), only
            # direct messages about other requests may go: the rule _due_statement applies,
            # asked again, as that drainer's claim may have landed since.
            direct = kind == "direct"
            stream = (platform, address, str(review_id)) if direct else (platform, address, "")
            if (platform, address) in blocked or stream in blocked:
                continue
            if row_id in mine:
                claimable.add(row_id)
            elif direct and state == "sending" and row_id not in held and not strict:
                blocked.update({stream, (platform, address, "")})
            else:
                blocked.add((platform, address))
        rows = in_lanes([row for row in due if row.id in claimable])
        if not rows:
            return []
        # One UPDATE for them all, past the ORM (its flush of a hundred rows was a third of a
        # claim's CPU); the rows as read are brought up to date to match.
        until = now + lease
        self._core(
            CLAIM[self._postgres], {"ids": [row.id for row in rows], "until": until, "by": by}
        )
        for row in rows:
            if row.state == "sending":
                # Its drainer's lease ran out mid-send: it may have gone.
                set_committed_value(row, "maybe_sent", True)
            set_committed_value(row, "state", "sending")
            set_committed_value(row, "attempts", row.attempts + 1)
            set_committed_value(row, "next_attempt_at", until)
        return rows

    def any_due(self, *, now: datetime, platforms: Sequence[str]) -> bool:
        """Whether any unsent row is due now (a claim may still find them held back)."""
        params = {"now": now, "platforms": list(platforms)}
        return self.session.exec(ANY_DUE, params=params).first() is not None

    def _due(
        self,
        now: datetime,
        platforms: Sequence[str],
        limit: int,
        held: Collection[int],
        taken: Sequence[int] | None = None,
    ) -> Sequence[Outbox]:
        """Unsent rows due now, oldest first, locked (others' locked rows skipped): urgent ones,
        or (given `taken`, the urgent ones found) any others."""
        params = {
            "now": now,
            "platforms": list(platforms),
            "limit": limit,
            "held": list(held),
            "own": list(held),
        }
        if taken is None:
            return self.session.exec(DUE_URGENT[self._postgres], params=params).all()
        params["taken"] = list(taken)
        return self.session.exec(DUE_OTHERS[self._postgres], params=params).all()

    def mark_sent(self, outbox_ids: Sequence[int], *, at: datetime, message_id: str | None) -> None:
        """Record that one message delivered these rows (one row, or a person's messages sent
        together), in one statement: the drain's hottest write. A row with a follow-up is
        looked at again now, to time its fallback from this moment."""
        values = {"ids": list(outbox_ids), "at": at, "sent_as": message_id}
        self._core(MARK_SENT[self._postgres], values)

    def settle(self, *, platform: str, key_prefixes: Sequence[str], at: datetime) -> int:
        """Mark `platform`'s unsent rows whose key starts with a prefix as sent, unsent: for
        messages someone has been told in other words (the shell's one line about its trial
        shifts). How many."""
        rows = self.session.exec(
            select(Outbox).where(
                Outbox.platform == platform,
                Outbox.state == "pending",
                or_(*(col(Outbox.key).startswith(prefix) for prefix in key_prefixes)),
            )
        ).all()
        for row in rows:
            row.state, row.sent_at, row.message_id = "sent", at, "summarised"
        return len(rows)

    def release_all_sending(self, *, now: datetime, by: str | None = None) -> int:
        """Hand back every claimed row, or those drainer `by` still holds; only once no other
        drainer (or `by`) can be sending them."""
        if by is not None:
            return len(self._core(HAND_BACK, {"by": by, "now": now}).all())
        claimed = select(Outbox.id).where(Outbox.state == "sending")
        ids = self.session.exec(claimed).all()
        # The process that claimed them died mid-send: each may have gone.
        self.flag_maybe_sent([i for i in ids if i is not None], True)
        self.release([i for i in ids if i is not None], now=now)
        return len(ids)

    def flag_maybe_sent(self, outbox_ids: Sequence[int], maybe_sent: bool) -> None:
        """Whether these rows' last attempts may have arrived unseen (True), or were looked
        for and had not (False)."""
        if outbox_ids:
            self._core(
                FLAG_MAYBE_SENT[self._postgres], {"ids": list(outbox_ids), "flag": maybe_sent}
            )

    def renew(self, outbox_ids: Sequence[int], *, until: datetime) -> None:
        """Extend the lease on claimed rows a living drainer still holds."""
        if outbox_ids:
            self._core(RENEW[self._postgres], {"ids": list(outbox_ids), "until": until})

    def release(self, outbox_ids: Sequence[int], *, now: datetime, by: str | None = None) -> None:
        """Hand claimed rows back unsent and uncounted (an earlier one to their destination
        failed, or this drainer ran out of lease time); with `by`, only those that drainer
        still holds."""
        if not outbox_ids:
            return
        if by is None:
            self._core(RELEASE[self._postgres], {"ids": list(outbox_ids), "now": now})
        else:
            values = {"ids": list(outbox_ids), "now": now, "by": by}
            self._core(RELEASE_OWN[self._postgres], values)

    def went_since(
        self,
        *,
        platform: str,
        queued_after: int,
        since: datetime,
        until: datetime | None = None,
    ) -> bool:
        """Whether a message queued after row `queued_after` has gone to `platform` since
        `since` (and by `until`): the platform takes messages. (Rows queued after one: a range
        of the primary key, however many were sent before it.)"""
        query = select(Outbox.id).where(
            col(Outbox.id) > queued_after,
            Outbox.platform == platform,
            Outbox.state == "sent",
            col(Outbox.sent_at) >= since,
        )
        if until is not None:
            query = query.where(col(Outbox.sent_at) <= until)
        return self.session.exec(query.limit(1)).first() is not None

    def waiting_behind(
        self, row: Outbox, *, queued_after: datetime, queued_by: datetime
    ) -> Sequence[Outbox]:
        """Escalation direct messages to `row`'s destination, queued after it (and between
        `queued_after` and `queued_by`), that have not gone: they wait for it, as the order
        requires."""
        query = (
            select(Outbox)
            .where(
                col(Outbox.id) > (row.id or 0),
                Outbox.platform == row.platform,
                Outbox.address == row.address,
                Outbox.kind == "direct",
                col(Outbox.key).startswith("esc:"),
                col(Outbox.state).in_(("pending", "sending")),
                col(Outbox.created_at) > queued_after,
                col(Outbox.created_at) <= queued_by,
            )
            .order_by(col(Outbox.id))
        )
        return self.session.exec(query).all()

    def held_up_before(self, row: Outbox, *, attempts: int) -> bool:
        """Whether a message queued before `row` to its destination has not gone after
        `attempts` tries and is still tried: `row` waits behind it."""
        query = select(Outbox.id).where(
            col(Outbox.id) < (row.id or 0),
            Outbox.platform == row.platform,
            Outbox.address == row.address,
            col(Outbox.state).in_(("pending", "sending")),
            col(Outbox.attempts) >= attempts,
        )
        return self.session.exec(query.limit(1)).first() is not None

    def drop_pending_escalations(self, review_id: int) -> int:
        """Once a review is acknowledged or closed, its unsent pings and reminders are moot.

        Rows mid-send are dropped too: if their sender dies, they are not sent again after the
        lease runs out (a send already under way still completes and is recorded as sent).
        """
        dropped = self._core(
            update(Outbox)
            .where(
                col(Outbox.review_id) == review_id,
                col(Outbox.state).in_(UNSENT),
                or_(col(Outbox.key).startswith("esc:"), col(Outbox.key).startswith("attend:")),
            )
            .values(state="dropped")
        )
        return int(dropped.rowcount)

    def watch_direct(self, *, key_prefix: str, at: datetime) -> None:
        """Give the direct messages queued under `key_prefix` a follow-up moment."""
        self.session.execute(
            update(Outbox)
            .where(
                col(Outbox.key).startswith(key_prefix, autoescape=True),
                col(Outbox.kind) == "direct",
                col(Outbox.follow_up_at).is_(None),
            )
            .values(follow_up_at=at)
        )

    def claim_follow_ups(self, now: datetime, limit: int) -> Sequence[Outbox]:
        """Messages whose follow-up moment has come, locked (PostgreSQL: skipping rows another
        replica holds) for this transaction."""
        query = (
            select(Outbox)
            .where(col(Outbox.follow_up_at) <= now)
            .order_by(col(Outbox.follow_up_at), col(Outbox.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.exec(query).all()

    def get(self, outbox_id: int) -> Outbox | None:
        return self.session.get(Outbox, outbox_id)

    def by_key(self, keys: Sequence[str]) -> Sequence[Outbox]:
        return self.session.exec(select(Outbox).where(col(Outbox.key).in_(keys))).all()

    def for_review(self, review_id: int) -> Sequence[Outbox]:
        query = select(Outbox).where(Outbox.review_id == review_id).order_by(col(Outbox.id))
        return self.session.exec(query).all()

    def last_outcome(self, platform: str, address: str) -> Outbox | None:
        """The latest message to `address` on `platform` that went or failed for good."""
        query = (
            select(Outbox)
            .where(
                Outbox.platform == platform,
                Outbox.address == address,
                col(Outbox.state).in_(("sent", "failed")),
            )
            .order_by(col(Outbox.id).desc())
            .limit(1)
        )
        return self.session.exec(query).first()

    def platforms(self) -> set[str]:
        """Every platform a message was ever queued for."""
        return set(self.session.exec(select(Outbox.platform).distinct()).all())

    def count_by_state(self) -> dict[str, int]:
        query = select(Outbox.state, func.count()).group_by(col(Outbox.state))
        return {state: count for state, count in self.session.exec(query).all()}

    def card(self, review_id: int, platform: str, channel: str) -> Card | None:
        query = select(Card).where(
            Card.review_id == review_id, Card.platform == platform, Card.channel == channel
        )
        return self.session.exec(query).first()

    def save_card(self, review_id: int, platform: str, channel: str, message_id: str) -> None:
        """Where the card now is: one UPDATE, or an INSERT for its first post (past the ORM:
        every card posted saves one, and the ORM's query and flush were a quarter of the
        drain's CPU)."""
        moved = self._core(
            MOVE_CARD,
            {
                "card_review": review_id,
                "card_platform": platform,
                "card_channel": channel,
                "card_message": message_id,
            },
        )
        if moved.rowcount == 0:
            self._core(
                insert(Card),
                {
                    "review_id": review_id,
                    "platform": platform,
                    "channel": channel,
                    "message_id": message_id,
                },
            )
