"""The escalation ladder with a clock moved by hand, on SQLite and PostgreSQL.

The shipped policy: level 0 at once to outreach; 5m outreach + outreach-backup and the channel;
10m icu-registrar; 15m site-manager, repeating every 5m. Urgent (NEWS2 5-6) attend within 60m.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from reviews import escalation, service
from reviews.model import Outcome, format_reference
from reviews.notify import Route
from reviews.outbox import DeliveryError, drain
from reviews.policy import load_policy
from storage.database import Database
from tests.support.builders import (
    NURSE,
    OUTREACH,
    RecordingSender,
    make_services,
    on_rota,
    request,
)

ALEX, SAM, IRIS, MO = "U01ALEX", "U01SAM", "U01IRIS", "U01MO"
CHANNEL, DIGEST = "C0OUTREACH", "C0DIGEST"


@pytest.fixture
def slack():
    return RecordingSender()


@pytest.fixture
def services(db, clock):
    start = clock.now() - timedelta(hours=1)
    on_rota(db, "outreach", "Alex Carter", ALEX, start, hours=24)
    on_rota(db, "outreach-backup", "Sam Patel", SAM, start, hours=24)
    on_rota(db, "icu-registrar", "Iris Khan", IRIS, start, hours=24)
    on_rota(db, "site-manager", "Mo Reid", MO, start, hours=24)
    return make_services(db, clock)


def tick(services, slack, clock, **advance):
    """Move the clock, run one sweep and drain the outbox: what a second of the bot does."""
    clock.advance(**advance)
    escalation.sweep(services)
    drain(services, {"slack": slack})


def pings(slack, address):
    return [item.message.text for item in slack.to(address) if item.kind in ("direct", "channel")]


def events(services, review_id, kind):
    with services.db.unit_of_work() as uow:
        return [
            json.loads(e.detail) | {"at": e.at}
            for e in uow.events.for_review(review_id)
            if e.kind == kind
        ]


def raise_standard(services, slack):
    review = service.raise_review(
        services=services, request=request(caller="staff", news2=""), by=NURSE
    ).review
    drain(services, {"slack": slack})
    return review.id


def test_each_level_fires_at_its_time_to_the_holders_of_its_roles(services, slack, clock, db):
    # The ICU registrar hands over to Ian at 09:08, before level 2 is due at 09:10.
    on_rota(db, "icu-registrar", "Ian Moss", "U01IAN", clock.now() + timedelta(minutes=8))
    with db.unit_of_work() as uow:
        for shift in uow.rota.shifts_at("icu-registrar", clock.now()):
            shift.end = clock.now() + timedelta(minutes=8)
    raise_standard(services, slack)
    assert pings(slack, ALEX) == ["New rapid review RR-0001 (standard): please acknowledge."]
    assert slack.to(ALEX)[0].message.actions == ("acknowledge",)

    tick(services, slack, clock, minutes=4, seconds=59)
    assert len(slack.sent) == 2  # the card and level 0, nothing more yet
    tick(services, slack, clock, seconds=1)
    level_1 = "Escalation level 1: RR-0001 (standard) has waited 5 min without acknowledgement."
    assert pings(slack, ALEX)[1:] == [level_1]
    assert pings(slack, SAM) == [level_1]
    assert pings(slack, CHANNEL) == [level_1]
    assert slack.to(SAM)[0].message.actions == ("acknowledge",)

    tick(services, slack, clock, minutes=5)
    assert pings(slack, "U01IAN") == [level_1.replace("level 1", "level 2").replace("5", "10")]
    assert pings(slack, IRIS) == []
    tick(services, slack, clock, minutes=5)
    assert pings(slack, MO) == [level_1.replace("level 1", "level 3").replace("5", "15")]
    assert pings(slack, CHANNEL) == [level_1]  # only level 1 has channel = true
    assert pings(slack, DIGEST) == []


def test_last_level_repeats_on_its_own_schedule_until_acknowledged(services, slack, clock):
    review_id = raise_standard(services, slack)
    tick(services, slack, clock, minutes=15)
    # A sweep that runs late does not push the next repeat later.
    tick(services, slack, clock, minutes=5, seconds=0.7)
    tick(services, slack, clock, minutes=4, seconds=59.3)
    assert [text.split(":")[0] for text in pings(slack, MO)] == [
        "Escalation level 3",
        "Escalation level 3, repeat 1",
        "Escalation level 3, repeat 2",
    ]
    assert "has waited 25 min" in pings(slack, MO)[-1]

    tick(services, slack, clock, minutes=1)
    service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    tick(services, slack, clock, minutes=30)
    assert len(pings(slack, MO)) == 3


def test_acknowledging_stops_the_ladder_at_once(services, slack, clock):
    review_id = raise_standard(services, slack)
    clock.advance(minutes=4, seconds=59)
    service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    for _ in range(5):
        tick(services, slack, clock, minutes=5)
    assert [text for text in pings(slack, ALEX) if "Escalation" in text] == []
    assert pings(slack, SAM) == pings(slack, IRIS) == pings(slack, MO) == []
    assert [e["level"] for e in events(services, review_id, "escalated")] == [0]


def test_pings_queued_but_not_yet_sent_are_dropped_by_the_acknowledgement(services, slack, clock):
    review_id = raise_standard(services, slack)
    clock.advance(minutes=5)
    escalation.sweep(services)  # level 1 queued; the outbox has not run yet
    service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    drain(services, {"slack": slack})
    assert pings(slack, SAM) == [] and pings(slack, CHANNEL) == []


def test_cancelled_and_closed_requests_never_escalate(services, slack, clock):
    cancelled = raise_standard(services, slack)
    closed = raise_standard(services, slack)
    clock.advance(minutes=2)
    service.cancel(services=services, review_id=cancelled, by=NURSE, reason="Raised in error")
    service.record_outcome(
        services=services, review_id=closed, by=OUTREACH, outcome=Outcome.NO_CHANGE
    )
    for _ in range(6):
        tick(services, slack, clock, minutes=5)
    assert pings(slack, SAM) == pings(slack, IRIS) == pings(slack, MO) == []
    for review_id in (cancelled, closed):
        assert [e["level"] for e in events(services, review_id, "escalated")] == [0]


def test_a_cover_gap_without_a_digest_channel_is_reported_in_the_outreach_channel(db, clock, slack):
    """DIGEST_CHANNEL is optional: without it a cover gap is said where the team will see it."""
    start = clock.now() - timedelta(hours=1)
    on_rota(db, "outreach-backup", "Sam Patel", SAM, start, hours=24)  # nobody holds outreach
    services = make_services(db, clock, routes=(Route("slack", CHANNEL),))
    raise_standard(services, slack)
    gaps = [text for text in pings(slack, CHANNEL) if text.startswith("Cover gap")]
    assert gaps == [
        "Cover gap: nobody holds outreach at escalation level 0 of RR-0001. Nobody at that "
        "level could be told, so the next level was called at once.",
        "Cover gap: nobody holds outreach at escalation level 1 of RR-0001.",  # Sam was told
    ]
    assert pings(slack, DIGEST) == []


def test_a_level_with_nobody_on_call_is_passed_at_once_and_reported(
    services, slack, clock, db, caplog
):
    with db.unit_of_work() as uow:
        for shift in uow.rota.shifts_at("icu-registrar", clock.now()):
            shift.end = clock.now()
    review_id = raise_standard(services, slack)
    tick(services, slack, clock, minutes=5)
    tick(services, slack, clock, minutes=5)
    # Level 2 (icu-registrar) had nobody, so level 3 fired at 10m, not 15m.
    assert pings(slack, MO) == [
        "Escalation level 3: RR-0001 (standard) has waited 10 min without acknowledgement."
    ]
    assert pings(slack, DIGEST) == [
        "Cover gap: nobody holds icu-registrar at escalation level 2 of RR-0001. Nobody at that "
        "level could be told, so the next level was called at once."
    ]
    level_2 = [e for e in events(services, review_id, "escalated") if e["level"] == 2]
    assert level_2[0]["nobody_on_call"] == ["icu-registrar"] and level_2[0]["notified"] == []
    gap = events(services, review_id, "cover_gap")
    assert [(g["level"], g["problem"], g["skipped"]) for g in gap] == [
        (2, "nobody holds icu-registrar", True)
    ]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "RR-0001: cover gap at escalation level 2: nobody holds icu-registrar "
        "(the next level was called at once)"
    ]
    tick(services, slack, clock, minutes=5)
    assert len(pings(slack, MO)) == 2 and len(pings(slack, DIGEST)) == 1


def test_a_last_level_nobody_holds_calls_every_earlier_level_again_each_repeat(
    services, slack, clock, db
):
    """No site manager on the rota: the repeating last level used to reach no person at all,
    only the digest channel, while outreach, its backup and the registrar sat on call."""
    with db.unit_of_work() as uow:
        for shift in uow.rota.shifts_at("site-manager", clock.now()):
            shift.end = clock.now()
    review_id = raise_standard(services, slack)
    for _ in range(3):
        tick(services, slack, clock, minutes=5)  # levels 1, 2, then 3 at 15 min
    called_again = (
        "Escalation level 3: RR-0001 (standard) has waited 15 min without acknowledgement. "
        "Nobody holding site-manager could be told, so everyone on the earlier levels is called "
        "again."
    )
    for person in (ALEX, SAM, IRIS):
        assert pings(slack, person)[-1] == called_again
    assert pings(slack, CHANNEL)[-1] == called_again  # the team sees it too
    tick(services, slack, clock, minutes=5)  # the repeat at 20 min: again
    assert pings(slack, ALEX)[-1].startswith("Escalation level 3, repeat 1: RR-0001")
    assert len(pings(slack, IRIS)) == 3  # level 2, then the two calls back
    level_3 = [e for e in events(services, review_id, "escalated") if e["level"] == 3]
    assert [(e["notified"], e["earlier_called"]) for e in level_3] == [
        (
            ["Alex Carter", "Sam Patel", "Iris Khan"],
            ["outreach", "outreach-backup", "icu-registrar"],
        )
    ] * 2
    # Still reported as a gap every time, as before.
    assert sum("nobody holds site-manager" in text for text in pings(slack, DIGEST)) == 2
    service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    tick(services, slack, clock, minutes=5)
    assert len(pings(slack, IRIS)) == 3


def test_nobody_holding_the_bleep_calls_level_one_at_raise(services, slack, clock, db):
    with db.unit_of_work() as uow:
        for shift in uow.rota.shifts_at("outreach", clock.now()):
            shift.end = clock.now()
    raise_standard(services, slack)
    assert pings(slack, SAM) == [
        "Escalation level 1: RR-0001 (standard) has waited under a minute without acknowledgement."
    ]
    assert "nobody holds outreach at escalation level 0" in pings(slack, DIGEST)[0]


def test_attend_reminders_once_per_interval_to_acknowledger_and_next_level(services, slack, clock):
    review = service.raise_review(services=services, request=request(news2="6"), by=NURSE).review
    clock.advance(minutes=1)
    service.acknowledge(services=services, review_id=review.id, by=OUTREACH)
    drain(services, {"slack": slack})
    tick(services, slack, clock, minutes=59, seconds=59)
    assert not [t for t in pings(slack, ALEX) if t.startswith("Reminder")]

    tick(services, slack, clock, seconds=1)
    reminder = (
        "Reminder: RR-0001 (urgent) was acknowledged by Alex Carter but nobody has "
        "pressed Attending within 60 min."
    )
    assert [t for t in pings(slack, ALEX) if t.startswith("Reminder")] == [reminder]
    assert pings(slack, SAM) == [reminder]  # level 1 was next: outreach and outreach-backup
    assert slack.to(SAM)[0].message.actions == ("attend",)
    tick(services, slack, clock, seconds=30)
    tick(services, slack, clock, minutes=59)
    assert len(pings(slack, SAM)) == 1
    tick(services, slack, clock, seconds=30)
    assert len(pings(slack, SAM)) == 2
    assert [e["count"] for e in events(services, review.id, "attend_reminder")] == [1, 2]

    service.attend(services=services, review_id=review.id, by=OUTREACH)
    tick(services, slack, clock, hours=3)
    assert len(pings(slack, SAM)) == 2


EMERGENCY_LADDER = """\
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "10m"
notify = ["site-manager"]
repeat_every = "10m"

[urgency.emergency]
news2_at_least = 7
attend_within = "30m"
[[urgency.emergency.levels]]
after = "0s"
notify = ["outreach", "icu-registrar"]
[[urgency.emergency.levels]]
after = "2m"
notify = ["site-manager"]
channel = true
repeat_every = "10m"

[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""


def test_each_urgency_band_escalates_by_its_own_ladder(db, clock, slack, tmp_path, services):
    path = tmp_path / "policy.toml"
    path.write_text(EMERGENCY_LADDER)
    services = make_services(db, clock, policy=load_policy(path))
    service.raise_review(services=services, request=request(news2="8"), by=NURSE)
    service.raise_review(services=services, request=request(news2="2"), by=NURSE)
    drain(services, {"slack": slack})
    assert [t.split(" (")[0] for t in pings(slack, IRIS)] == ["New rapid review RR-0001"]
    tick(services, slack, clock, minutes=2)
    assert [t.split(":")[1] for t in pings(slack, MO)] == [
        " RR-0001 (emergency) has waited 2 min without acknowledgement."
    ]
    assert len(pings(slack, CHANNEL)) == 1
    tick(services, slack, clock, minutes=8)
    assert [t.split(" has")[0] for t in pings(slack, MO)] == [
        "Escalation level 1: RR-0001 (emergency)",
        "Escalation level 1: RR-0002 (standard)",
    ]


def test_a_review_keeps_the_policy_it_was_raised_under(db, clock, slack, tmp_path, services):
    path = tmp_path / "policy.toml"
    path.write_text(EMERGENCY_LADDER)
    old = make_services(db, clock, policy=load_policy(path))
    service.raise_review(services=old, request=request(news2="2"), by=NURSE)
    path.write_text(EMERGENCY_LADDER.replace('after = "10m"', 'after = "1m"'))
    new = make_services(db, clock, policy=load_policy(path))  # a restart with the changed file
    service.raise_review(services=new, request=request(news2="2"), by=NURSE)
    tick(new, slack, clock, minutes=1)
    assert [t.split(":")[1][:8] for t in pings(slack, MO)] == [" RR-0002"]
    tick(new, slack, clock, minutes=9)
    assert [t.split(":")[1][:8] for t in pings(slack, MO)] == [" RR-0002", " RR-0001"]


def test_levels_that_fell_due_while_down_fire_in_order_on_the_next_sweep(services, slack, clock):
    review_id = raise_standard(services, slack)
    tick(services, slack, clock, minutes=31)  # the bot was down from the raise until now
    # Levels 1, 2 and 3 at once, in order, then one catch-up repeat (not three).
    order = [item.address for item in slack.sent if item.kind == "direct"]
    assert order == [ALEX, ALEX, SAM, IRIS, MO]
    assert [e["level"] for e in events(services, review_id, "escalated")] == [0, 1, 2, 3]
    tick(services, slack, clock, minutes=3, seconds=59)
    assert len(pings(slack, MO)) == 1
    tick(services, slack, clock, seconds=1)  # 35m: back on the 5-minute schedule
    assert [t.split(":")[0] for t in pings(slack, MO)] == [
        "Escalation level 3",
        "Escalation level 3, repeat 1",
    ]


def test_every_escalation_step_is_an_audit_event(services, slack, clock):
    review_id = raise_standard(services, slack)
    tick(services, slack, clock, minutes=20)
    steps = events(services, review_id, "escalated")
    assert [(s["level"], s["repeat"], s["notified"]) for s in steps] == [
        (0, 0, ["Alex Carter"]),
        (1, 0, ["Alex Carter", "Sam Patel"]),
        (2, 0, ["Iris Khan"]),
        (3, 0, ["Mo Reid"]),
    ]
    assert steps[1]["channel"] is True and steps[1]["roles"] == ["outreach", "outreach-backup"]
    assert steps[0]["at"] == clock.now() - timedelta(minutes=20)
    tick(services, slack, clock, minutes=5)
    assert events(services, review_id, "escalated")[-1]["repeat"] == 1


def test_two_sweeps_at_once_queue_each_ping_once(services, slack, clock, database_url):
    for _ in range(20):
        service.raise_review(services=services, request=request(news2=""), by=NURSE)
    clock.advance(minutes=15)
    replicas = [make_services(Database(database_url), clock) for _ in range(2)]
    threads = [threading.Thread(target=escalation.sweep, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    drain(services, {"slack": slack})
    # Alex's level-0 pings waited the 15 minutes, so they arrive as one message naming each.
    references = [format_reference(number) for number in range(1, 21)]
    for address, per_review in ((ALEX, 2), (SAM, 1), (IRIS, 1), (MO, 1), (CHANNEL, 1)):
        said = "\n".join(pings(slack, address))
        assert [said.count(f"{reference} ") for reference in references] == [per_review] * 20
    for replica in replicas:
        replica.db.dispose()


def test_a_review_that_cannot_be_escalated_holds_up_nobody_else(services, slack, clock, caplog):
    broken = raise_standard(services, slack)
    raise_standard(services, slack)
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(broken)
        review.policy = review.policy.replace('"levels": [', '"levels": [7, ')  # damaged
    tick(services, slack, clock, minutes=5)
    assert [t.split(":")[1][:8] for t in pings(slack, SAM)] == [" RR-0002"]
    assert "RR-0001 could not be escalated (TypeError); will retry" in caplog.text
    assert "Traceback" not in caplog.text  # a database error's text can carry the request
    with services.db.unit_of_work() as uow:
        assert uow.reviews.get(broken).escalation_level == 1  # untouched: still due
    tick(services, slack, clock, seconds=1)  # still broken on the next tick: told once only
    told = [t for t in pings(slack, "C0DIGEST") if "could not be escalated" in t]
    assert told == [told[0]] and told[0].startswith("RR-0001 could not be escalated")


def test_a_ping_failing_as_the_request_is_acknowledged_is_not_retried(services, slack, clock):
    review_id = raise_standard(services, slack)
    clock.advance(minutes=5)
    escalation.sweep(services)

    class AcknowledgedMidSend(RecordingSender):
        def deliver(self, item):
            if item.address == SAM:  # Alex presses Acknowledge while Sam's ping is in flight
                service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
                raise DeliveryError("Slack 503")
            return super().deliver(item)

    drain(services, {"slack": AcknowledgedMidSend()})
    tick(services, slack, clock, minutes=1)
    assert pings(slack, SAM) == []


def test_a_review_that_breaks_halfway_through_a_level_leaves_nothing_of_itself(
    services, slack, clock, caplog
):
    # Its level 1 damaged after its first role: Sam's ping is queued before the step breaks.
    broken = raise_standard(services, slack)
    raise_standard(services, slack)
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(broken)
        policy = json.loads(review.policy)
        policy["levels"][1]["notify"] = ["outreach-backup", {"damaged": True}]
        review.policy = json.dumps(policy)
    tick(services, slack, clock, minutes=5)
    # Sam hears of the request that escalated, never of the one that broke half-way.
    assert [t.split(":")[1][:8] for t in pings(slack, SAM)] == [" RR-0002"]
    assert "RR-0001 could not be escalated" in caplog.text
    with services.db.unit_of_work() as uow:
        assert uow.reviews.get(broken).escalation_level == 1  # untouched: still due
    assert [e["level"] for e in events(services, broken, "escalated")] == [0]
