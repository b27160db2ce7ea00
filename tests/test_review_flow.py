"""The life of a review through the core services, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import event, text

from reviews import service
from reviews.context import Actor
from reviews.model import Outcome
from reviews.outbox import DeliveryError, OutboundItem, drain
from storage.database import Database
from tests.support.builders import (
    NURSE,
    OUTREACH,
    RecordingSender,
    make_services,
    on_rota,
    request,
)
from tests.support.waiting import eventually


@pytest.fixture
def services(db, clock):
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", clock.now())
    return make_services(db, clock)


def test_raise_posts_card_and_pings_bleep_holder(services):
    result = service.raise_review(services=services, request=request(), by=NURSE)
    slack = RecordingSender()
    drain(services, {"slack": slack})

    assert result.reference == "RR-0001"
    card = slack.to("C0OUTREACH")[0]
    assert card.kind == "card"
    assert card.message.review.ward == "Ward 7"
    assert card.message.review.urgency == "urgent"
    assert card.message.actions == ("acknowledge", "attend", "record_outcome", "cancel")
    ping = slack.to("U01ALEX")[0]
    assert ping.kind == "direct" and "RR-0001" in ping.message.text
    assert ping.message.actions == ("acknowledge",)


def test_card_never_shows_identifiers(services):
    service.raise_review(services=services, request=request(), by=NURSE)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    for item in slack.sent:
        payload = str(item.message)
        assert "9990000018" not in payload
        assert "07700 900123" not in payload
    assert slack.to("C0OUTREACH")[0].message.review.nhs_last4 == "***0018"


def test_full_flow_updates_card_in_place_and_threads(services):
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    slack = RecordingSender()
    drain(services, {"slack": slack})

    service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    service.attend(services=services, review_id=review_id, by=OUTREACH)
    closed = service.record_outcome(
        services=services, review_id=review_id, by=OUTREACH, outcome=Outcome.TRANSFER, detail="ICU"
    )
    drain(services, {"slack": slack})

    assert closed.review.state == "closed"
    updates = [i for i in slack.to("C0OUTREACH") if i.kind == "card_update"]
    assert [u.message.review.state for u in updates] == ["acknowledged", "attending", "closed"]
    [card] = [i for i in slack.to("C0OUTREACH") if i.kind == "card"]
    assert all(u.card_id == slack.id_of(card) for u in updates)
    threads = [i.message.text for i in slack.to("C0OUTREACH") if i.kind == "thread"]
    assert "Acknowledged by Alex Carter" in threads[0]
    assert "Transfer to a higher level of care (ICU)" in threads[2]
    callback = [i for i in slack.to("U01ALEX") if "call back" in i.message.text]
    assert "07700 900123" in callback[0].message.text
    told = [i.message.text for i in slack.to("U0WARDNURSE")]
    assert len(told) == 3 and "Closed" in told[-1]


def test_double_acknowledge_changes_nothing(services):
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    first = service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    second = service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    assert first.changed and not second.changed
    with services.db.unit_of_work() as uow:
        kinds = [e.kind for e in uow.events.for_review(review_id)]
    assert kinds.count("acknowledged") == 1


def test_non_responder_is_refused(services):
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    with pytest.raises(service.NotAllowed, match="not on the rota"):
        service.acknowledge(services=services, review_id=review_id, by=NURSE)
    with services.db.unit_of_work() as uow:
        assert uow.reviews.get(review_id).state == "raised"


def test_raiser_may_cancel_with_a_reason(services):
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    with pytest.raises(service.ServiceError, match="why"):
        service.cancel(services=services, review_id=review_id, by=NURSE, reason=" ")
    result = service.cancel(services=services, review_id=review_id, by=NURSE, reason="Raised twice")
    assert result.review.state == "cancelled"
    with pytest.raises(service.WrongState):
        service.acknowledge(services=services, review_id=review_id, by=OUTREACH)


def test_same_submission_twice_is_one_review(services):
    first = service.raise_review(
        services=services, request=request(), by=NURSE, submission_key="V1"
    )
    again = service.raise_review(
        services=services, request=request(), by=NURSE, submission_key="V1"
    )
    assert again.review.id == first.review.id and not again.changed
    with services.db.unit_of_work() as uow:
        assert uow.reviews.count_open() == 1


@pytest.mark.parametrize("first_press", ["attend", "record_outcome"])
def test_call_back_number_reaches_whoever_takes_the_request_first(services, first_press):
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    if first_press == "attend":
        service.attend(services=services, review_id=review_id, by=OUTREACH)
    else:
        service.record_outcome(
            services=services, review_id=review_id, by=OUTREACH, outcome=Outcome.NOT_REACHED
        )
    service.record_outcome(
        services=services, review_id=review_id, by=OUTREACH, outcome=Outcome.NO_CHANGE
    )
    slack = RecordingSender()
    drain(services, {"slack": slack})
    callbacks = [i.message.text for i in slack.to("U01ALEX") if "call back" in i.message.text]
    assert callbacks == ["RR-0001: call back on 07700 900123 (family, carer or advocate)."]
    assert not any("07700" in str(i.message) for i in slack.to("C0OUTREACH"))


def test_someone_a_corrected_rota_took_off_can_no_longer_acknowledge(db, clock, tmp_path):
    from rotas.importer import import_rota

    header = "role,name,email,slack_user_id,teams_user_id,start,end\n"
    first, corrected = tmp_path / "december.csv", tmp_path / "december-v2.csv"
    first.write_text(
        header + "outreach,Jo Reyes,jo.reyes@nhs.net,U0JO,,2026-12-01T08:00,2026-12-01T20:00\n"
    )
    corrected.write_text(
        header + "outreach,Sam Patel,sam.patel@nhs.net,U01SAM,,2026-12-01T08:00,2026-12-01T20:00\n"
    )
    services = make_services(db, clock)
    assert import_rota(services=services, path=first).ok
    assert import_rota(services=services, path=corrected).ok
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    jo = Actor(platform="slack", user_id="U0JO", name="Jo Reyes")
    with pytest.raises(service.NotAllowed):
        service.acknowledge(services=services, review_id=review_id, by=jo)
    sam = Actor(platform="slack", user_id="U01SAM", name="Sam Patel")
    assert service.acknowledge(services=services, review_id=review_id, by=sam).changed


def test_asking_for_an_outcome_or_a_reason_is_checked_before_the_form_opens(services):
    from reviews.model import Action

    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    with pytest.raises(service.NotAllowed):
        service.check_may(
            services=services, review_id=review_id, by=NURSE, action=Action.RECORD_OUTCOME
        )
    assert (
        service.check_may(services=services, review_id=review_id, by=NURSE, action=Action.CANCEL)
        == "RR-0001"
    )
    service.cancel(services=services, review_id=review_id, by=NURSE, reason="Raised twice")
    with pytest.raises(service.WrongState, match="already cancelled"):
        service.check_may(
            services=services, review_id=review_id, by=OUTREACH, action=Action.RECORD_OUTCOME
        )


SAM = Actor(platform="slack", user_id="U02SAM", name="Sam Patel")
CALLBACK = "RR-0001: call back on 07700 900123 (family, carer or advocate)."


def test_a_call_back_number_that_never_reached_whoever_took_it_goes_to_whoever_attends(
    services, db, clock
):
    """The family waits to be called back on the number only whoever took the request is sent.
    If that private message fails for good, the team is told in the card's thread, and whoever
    moves the request on next is sent the number instead."""
    on_rota(db, "outreach", SAM.name, SAM.user_id, clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, {"slack": RecordingSender()})  # the card and level 0's pings
    service.acknowledge(services=services, review_id=1, by=OUTREACH)
    refused = DeliveryError("Slack refused: cannot_dm_bot", permanent=True)
    alex_unreachable = RecordingSender(failures=[refused], failing="U01ALEX")
    drain(services, {"slack": alex_unreachable})
    assert not [i for i in alex_unreachable.to("U01ALEX") if "call back" in i.message.text]
    slack = RecordingSender()
    drain(services, {"slack": slack})
    told = alex_unreachable.to("C0OUTREACH") + slack.to("C0OUTREACH")
    thread = [i.message.text for i in told if i.kind == "thread"]
    assert (
        "RR-0001: the call-back number could not be sent privately to Alex Carter. Whoever "
        "presses Attending on this card is sent it privately."
    ) in thread
    assert not any("07700" in text for text in thread)

    service.attend(services=services, review_id=1, by=SAM)
    drain(services, {"slack": slack})
    assert [i.message.text for i in slack.to("U02SAM") if "call back" in i.message.text] == [
        CALLBACK
    ]


def test_the_call_back_number_goes_to_nobody_else_once_it_reached_whoever_took_it(
    services, db, clock
):
    on_rota(db, "outreach", SAM.name, SAM.user_id, clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    service.acknowledge(services=services, review_id=1, by=OUTREACH)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    service.attend(services=services, review_id=1, by=SAM)
    drain(services, {"slack": slack})
    assert [i.message.text for i in slack.to("U01ALEX") if "call back" in i.message.text] == [
        CALLBACK
    ]
    assert not [i for i in slack.to("U02SAM") if "call back" in i.message.text]


PAT = Actor(platform="slack", user_id="U03PAT", name="Pat Jones")


def _callbacks(slack: RecordingSender, user_id: str) -> list[str]:
    return [i.message.text for i in slack.to(user_id) if "call back" in i.message.text]


def _thread(slack: RecordingSender) -> list[str]:
    return [i.message.text for i in slack.to("C0OUTREACH") if i.kind == "thread"]


def test_a_call_back_number_that_fails_again_for_whoever_attends_is_said_again(services, db, clock):
    """Whoever took a request is usually who attends: when their private messages fail for
    good (a Teams person without the bot), the number went again to the same unreachable
    conversation at Attending, failed again, and nothing more was said: the thread's "whoever
    presses Attending is sent it" read as if they now had it. Each failure is said, with who
    is sent it next."""
    on_rota(db, "outreach", SAM.name, SAM.user_id, clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, {"slack": RecordingSender()})

    def alex_refused() -> RecordingSender:
        refused = DeliveryError("Slack refused: cannot_dm_bot", permanent=True)
        return RecordingSender(failures=[refused], failing="U01ALEX")

    service.acknowledge(services=services, review_id=1, by=OUTREACH)
    first = alex_refused()
    drain(services, {"slack": first})
    drain(services, {"slack": first})
    service.attend(services=services, review_id=1, by=OUTREACH)
    again = alex_refused()
    drain(services, {"slack": again})
    drain(services, {"slack": again})
    assert not _callbacks(first, "U01ALEX") + _callbacks(again, "U01ALEX")
    assert (
        "RR-0001: the call-back number could not be sent privately to Alex Carter. Whoever "
        "records its outcome is sent it privately."
    ) in _thread(again)

    service.record_outcome(services=services, review_id=1, by=SAM, outcome=Outcome.NO_CHANGE)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    assert _callbacks(slack, "U02SAM") == [CALLBACK]


def test_once_the_call_back_number_reached_someone_it_goes_to_nobody_else(services, db, clock):
    """Whoever presses Attending after the first private message failed is sent the number;
    whoever records the outcome afterwards was sent it as well, though someone had it."""
    on_rota(db, "outreach", SAM.name, SAM.user_id, clock.now())
    on_rota(db, "outreach", PAT.name, PAT.user_id, clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, {"slack": RecordingSender()})
    service.acknowledge(services=services, review_id=1, by=OUTREACH)
    refused = DeliveryError("Slack refused: cannot_dm_bot", permanent=True)
    drain(services, {"slack": RecordingSender(failures=[refused], failing="U01ALEX")})

    slack = RecordingSender()
    service.attend(services=services, review_id=1, by=SAM)
    drain(services, {"slack": slack})
    service.record_outcome(services=services, review_id=1, by=PAT, outcome=Outcome.NO_CHANGE)
    drain(services, {"slack": slack})
    assert _callbacks(slack, "U02SAM") == [CALLBACK]
    assert not _callbacks(slack, "U03PAT")


def test_a_call_back_number_failing_as_attending_is_pressed_goes_to_whoever_attends(
    postgres_url, clock
):
    """On PostgreSQL the private message to whoever took the request can fail for good while
    someone presses Attending: the press read the message as still on its way, so sent the
    number to nobody, and the failure, waiting on the press, read the request attended and
    said whoever records its outcome is sent it. The number went at the outcome rather than at
    Attending. Whoever attended is sent it at once."""
    db = Database(postgres_url)
    try:
        on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now())
        on_rota(db, "outreach", SAM.name, SAM.user_id, clock.now())
        services = make_services(db, clock)
        service.raise_review(services=services, request=request(), by=NURSE)
        drain(services, {"slack": RecordingSender()})
        service.acknowledge(services=services, review_id=1, by=OUTREACH)

        pressed, go_on = threading.Event(), threading.Event()
        attending = threading.Thread(
            target=service.attend, kwargs={"services": services, "review_id": 1, "by": SAM}
        )

        def hold_the_press(_connection: object) -> None:
            # Attending has read the request and its messages, and is about to commit.
            if threading.current_thread() is attending and not pressed.is_set():
                pressed.set()
                go_on.wait(30)

        event.listen(db.engine, "commit", hold_the_press)
        attending.start()
        assert pressed.wait(30)
        refused = DeliveryError("Slack refused: cannot_dm_bot", permanent=True)
        alex_unreachable = RecordingSender(failures=[refused], failing="U01ALEX")
        failing = threading.Thread(target=drain, args=(services, {"slack": alex_unreachable}))
        failing.start()
        eventually(lambda: not failing.is_alive() or _waiting_for_a_lock(db), "the failure")
        go_on.set()
        attending.join(30)
        failing.join(30)
        event.remove(db.engine, "commit", hold_the_press)

        slack = RecordingSender()
        drain(services, {"slack": slack})
        assert _callbacks(alex_unreachable, "U02SAM") + _callbacks(slack, "U02SAM") == [CALLBACK]
        assert (
            "RR-0001: the call-back number could not be sent privately to Alex Carter. It is "
            "sent privately to Sam Patel instead."
        ) in _thread(alex_unreachable) + _thread(slack)
    finally:
        db.dispose()


def _waiting_for_a_lock(db: Database) -> bool:
    with db.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def test_a_call_back_number_nobody_pressing_could_be_sent_goes_to_the_bleep_holder(
    services, db, clock
):
    """Whoever took the request could not be sent the number privately, and recorded the
    outcome themselves: it went again to them alone, failed again, and the thread said only
    that a manager could find it in the month's export. The family waited all night. It goes
    privately to whoever holds the bleep now instead, and the thread says so, without it."""
    on_rota(db, "outreach", SAM.name, SAM.user_id, clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, {"slack": RecordingSender()})
    refused = DeliveryError("Slack refused: cannot_dm_bot", permanent=True)
    service.acknowledge(services=services, review_id=1, by=OUTREACH)
    drain(services, {"slack": RecordingSender(failures=[refused], failing="U01ALEX")})
    service.record_outcome(services=services, review_id=1, by=OUTREACH, outcome=Outcome.NO_CHANGE)
    alex_unreachable = RecordingSender(failures=[refused], failing="U01ALEX")
    drain(services, {"slack": alex_unreachable})
    slack = RecordingSender()
    drain(services, {"slack": slack})

    assert _callbacks(alex_unreachable, "U02SAM") + _callbacks(slack, "U02SAM") == [CALLBACK]
    thread = _thread(alex_unreachable) + _thread(slack)
    assert (
        "RR-0001: the call-back number could not be sent privately to Alex Carter. It is sent "
        "privately to Sam Patel instead."
    ) in thread
    assert not any("07700" in line for line in thread)


def test_a_call_back_number_failing_for_one_bleep_holder_names_the_one_who_has_it(
    services, db, clock
):
    """Two nurses hold the bleep; Alex took and closed the request and could not be sent the
    number, so it went to both. Jo cannot be sent it either: the thread said a manager could
    find it in the month's export, and the night coordinator went looking, though Sam had it."""
    on_rota(db, "outreach", SAM.name, SAM.user_id, clock.now())
    on_rota(db, "outreach", "Jo Wright", "U03JO", clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, {"slack": RecordingSender()})
    refused = DeliveryError("Slack refused: cannot_dm_bot", permanent=True)
    service.acknowledge(services=services, review_id=1, by=OUTREACH)
    service.record_outcome(services=services, review_id=1, by=OUTREACH, outcome=Outcome.NO_CHANGE)
    slack = Unreachable(refusal=refused, people=frozenset({"U01ALEX", "U03JO"}))
    for _ in range(3):
        drain(services, {"slack": slack})

    assert _callbacks(slack, "U02SAM") == [CALLBACK]
    thread = _thread(slack)
    assert (
        "RR-0001: the call-back number could not be sent privately to Jo Wright. It is sent "
        "privately to Sam Patel."
    ) in thread
    assert not any("export" in line for line in thread)
    assert not any("07700" in line for line in thread)


@dataclass
class Unreachable(RecordingSender):
    """Slack, refusing every private message to `people` (deactivated accounts)."""

    refusal: DeliveryError | None = None
    people: frozenset[str] = frozenset()

    def deliver(self, item: OutboundItem) -> str | None:
        if item.kind == "direct" and item.address in self.people and self.refusal:
            raise self.refusal
        return super().deliver(item)
