"""The outbox's query for due messages, against its rule written out plainly (hypothesis).

The query is built for speed (each destination's first held-back row found once), so this
checks it over generated queues, on SQLite and PostgreSQL, against the rule it must keep: a
row is due unless an earlier unsent row to the same destination is not due, and of those a
direct message is held back only by one waiting to retry, one of another kind, one about the
same request, or one this drainer holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert
from sqlmodel import col, select

from reviews import service
from storage.outbox import NOT_URGENT, UNSENT
from storage.tables import Outbox
from tests.support.builders import NURSE, make_services, request

PLATFORMS = ["slack", "teams"]


@dataclass(frozen=True)
class Row:
    platform: str
    address: str
    kind: str
    review: int | None  # which of the test's requests (0, 1), or None
    escalation: bool  # its key says it is an escalation ping
    state: str
    due_in: int  # seconds from now to its next attempt


# (state, seconds to the next attempt): due to go, held by a drainer (its lease), waiting to
# retry, a lease run out (its drainer died or stalled), gone, given up. Rows that hold others
# back are kept rarer, or nearly every row would be held back and the rule barely tested.
SITUATION = st.sampled_from(
    [("pending", -1)] * 4
    + [("sending", 15)] * 2
    + [("pending", 15), ("sending", -1), ("sent", -60), ("failed", -60)]
)
ROW = st.builds(
    lambda platform, address, kind, review, escalation, situation: Row(
        platform, address, kind, review, escalation, *situation
    ),
    platform=st.sampled_from(["slack", "slack", "slack", "teams", "pager"]),
    address=st.sampled_from(["C1", "U1", "U1"]),
    kind=st.sampled_from(["direct"] * 4 + ["card", "card_update", "thread", "channel"]),
    review=st.sampled_from([None, 0, 1]),
    escalation=st.booleans(),
    situation=SITUATION,
)


def due_by_rule(
    rows: list[Outbox], *, held: set[int], limit: int, urgent: bool, taken: set[int]
) -> list[int]:
    """What the query must return, row by row, as the rule reads (`rows` in id order)."""
    if not rows:
        return []
    now = rows[0].created_at  # every row was queued at the test's now

    def number(row: Outbox) -> int:
        return row.id or 0

    def waiting(row: Outbox) -> bool:
        return row.state in UNSENT and row.next_attempt_at > now

    def held_back(row: Outbox) -> bool:
        return any(
            waiting(earlier)
            and number(earlier) < number(row)
            and (earlier.platform, earlier.address) == (row.platform, row.address)
            and (
                earlier.state == "pending"
                or row.kind != "direct"
                or earlier.kind != "direct"
                or earlier.review_id == row.review_id
                or number(earlier) in held
            )
            for earlier in rows
        )

    def in_lane(row: Outbox) -> bool:
        if urgent:
            return row.kind not in NOT_URGENT or row.key.startswith("esc:")
        return number(row) not in taken

    found = [
        number(row)
        for row in rows
        if row.state in UNSENT
        and row.next_attempt_at <= now
        and row.platform in PLATFORMS
        and number(row) not in held
        and in_lane(row)
        and not held_back(row)
    ]
    return found[:limit]


def direct(review: int | None, state: str, due_in: int) -> Row:
    return Row("slack", "U1", "direct", review, True, state, due_in)


@given(
    queue=st.lists(ROW, max_size=16),
    held_picks=st.lists(st.integers(min_value=0, max_value=15), max_size=4),
    limit=st.integers(min_value=1, max_value=8),
    taken_picks=st.lists(st.integers(min_value=0, max_value=15), max_size=4),
)
# A person's ping held by another drainer holds back only the same request's next ping; one
# this drainer holds (held_picks 0), or one waiting to retry, holds back all of theirs.
@example([direct(0, "sending", 15), direct(0, "pending", -1), direct(1, "pending", -1)], [], 5, [])
@example([direct(0, "sending", 15), direct(1, "pending", -1)], [0], 5, [])
@example([direct(0, "pending", 15), direct(1, "pending", -1)], [], 5, [])
@example([Row("slack", "U1", "card", 0, False, "sending", 15), direct(1, "pending", -1)], [], 5, [])
@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_due_query_takes_exactly_what_its_rule_allows(
    db, clock, queue, held_picks, limit, taken_picks
):
    services = make_services(db, clock)
    now = clock.now()
    with db.unit_of_work() as uow:
        reviews = [
            service.add_review(uow, services, request(), NURSE, now=now).id for _ in range(2)
        ]
        uow.session.execute(delete(Outbox))
        for number, row in enumerate(queue):
            uow.session.execute(
                insert(Outbox).values(
                    key=f"{'esc:' if row.escalation else 'msg:'}{number}",
                    review_id=None if row.review is None else reviews[row.review],
                    platform=row.platform,
                    kind=row.kind,
                    address=row.address,
                    payload="{}",
                    state=row.state,
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now + timedelta(seconds=row.due_in),
                )
            )
    with db.unit_of_work() as uow:
        stored = list(uow.session.exec(select(Outbox).order_by(col(Outbox.id))).all())
        ids = [row.id or 0 for row in stored]
        # This drainer holds rows it claimed (some perhaps with their lease run out).
        held = {ids[pick] for pick in held_picks if pick < len(ids)}
        taken = {ids[pick] for pick in taken_picks if pick < len(ids)}
        for urgent in (True, False):
            expected = due_by_rule(stored, held=held, limit=limit, urgent=urgent, taken=taken)
            found = uow.outbox._due(
                now, PLATFORMS, limit, held, taken=None if urgent else sorted(taken)
            )
            assert [row.id for row in found] == expected, (
                f"{'urgent' if urgent else 'others'} lane: the query and the rule disagree"
            )
