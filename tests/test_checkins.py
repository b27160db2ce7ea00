"""Daily check-ins in the core, on SQLite and PostgreSQL: the rules of CONTRACT.md "Daily
check-in" (a wish for a review raises one in the same transaction; "worse" is told to the
recorder; a retried submission records once)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func
from sqlmodel import select

from reviews.checkin_model import CheckinForm, validate_checkin
from reviews.checkins import last_ward, record_checkin, ward_day
from reviews.model import FormErrors
from storage.database import Database, DatabaseUnavailable
from storage.tables import Checkin, Review
from tests.support.builders import NURSE, make_services
from tests.support.clock import FrozenClock


def count(uow, table: type) -> int:
    return uow.session.exec(select(func.count()).select_from(table)).one()


ASKED = CheckinForm(ward="Ward 7", bed="12", respondent="patient", answer="same")


def checkin(**changes: str):
    return validate_checkin(CheckinForm(**{**ASKED.__dict__, **changes}))


def test_a_same_answer_is_recorded_and_confirmed(db: Database, clock: FrozenClock) -> None:
    services = make_services(db, clock)
    result = record_checkin(services=services, checkin=checkin(), by=NURSE, source="slack")
    assert result.note == "Check-in recorded for Ward 7 bed 12: the same."
    assert result.review is None
    with db.unit_of_work() as uow:
        stored = uow.session.get(Checkin, result.checkin.id)
        assert count(uow, Review) == 0
    assert stored is not None and stored.answer == "same" and stored.respondent == "patient"


def test_worse_without_a_wish_for_review_tells_the_recorder_what_to_do(
    db: Database, clock: FrozenClock
) -> None:
    services = make_services(db, clock)
    result = record_checkin(
        services=services, checkin=checkin(answer="worse"), by=NURSE, source="slack"
    )
    assert result.review is None
    assert "offer them a rapid review" in result.note and "repeat their observations" in result.note


def test_a_wish_for_review_raises_one_that_escalates_and_names_its_reference(
    db: Database, clock: FrozenClock
) -> None:
    services = make_services(db, clock)
    result = record_checkin(
        services=services,
        checkin=checkin(respondent="family", answer="worse", wants_review="yes", worries="pale"),
        by=NURSE,
        source="slack",
    )
    assert result.reference == "RR-0001"
    assert "RR-0001 raised" in result.note
    with db.unit_of_work() as uow:
        review = uow.reviews.get(1)
        outbox = [row.key for row in uow.outbox.for_review(1)]
        kinds = [e.kind for e in uow.events.for_review(1)]
    assert review is not None and review.caller == "family" and review.ward == "Ward 7"
    assert "pale" in review.concern
    assert result.checkin.review_id == 1
    assert "card:1:slack" in outbox and kinds[:1] == ["raised"] and "checkin" in kinds


def test_a_retried_submission_records_one_checkin_and_one_review(
    db: Database, clock: FrozenClock
) -> None:
    services = make_services(db, clock)
    wish = checkin(wants_review="yes")
    first = record_checkin(
        services=services, checkin=wish, by=NURSE, source="slack", submission_key="slack:V1:0"
    )
    again = record_checkin(
        services=services, checkin=wish, by=NURSE, source="slack", submission_key="slack:V1:0"
    )
    assert (first.changed, again.changed) == (True, False)
    assert again.reference == first.reference == "RR-0001"
    with db.unit_of_work() as uow:
        assert count(uow, Checkin) == 1
        assert count(uow, Review) == 1


def test_a_review_is_never_stored_without_its_checkin(db: Database, clock: FrozenClock) -> None:
    # One transaction: the review is written first, so a check-in that then fails to store
    # (here PostgreSQL refusing an over-long value) must take the review with it.
    if db.is_sqlite:
        pytest.skip("SQLite does not enforce column lengths")
    services = make_services(db, clock)
    with pytest.raises(DatabaseUnavailable):
        record_checkin(services=services, checkin=checkin(wants_review="yes"), by=NURSE,
                       source="x" * 30)  # fmt: skip
    with db.unit_of_work() as uow:
        assert count(uow, Review) == 0
        assert count(uow, Checkin) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"respondent": ""}, "respondent"),
        ({"answer": ""}, "answer"),
        ({"respondent": "not_asked", "answer": ""}, "not_asked_reason"),
        ({"respondent": "not_asked", "not_asked_reason": "asleep"}, "answer"),
        (
            {"respondent": "not_asked", "not_asked_reason": "asleep", "answer": "",
             "wants_review": "yes"},
            "wants_review",
        ),
        ({"bed": ""}, "bed"),
        ({"ward": ""}, "ward"),
        # A review it asks for is paged with its ward and bed: never an NHS or phone number.
        ({"bed": "999 000 0018", "wants_review": "yes"}, "bed"),
        ({"bed": "07700 900123"}, "bed"),
        ({"ward": "Ward 7 999 000 0018"}, "ward"),
        ({"worries": "x" * 2001}, "worries"),
    ],
)  # fmt: skip
def test_bad_forms_name_the_field_to_fix(changes: dict[str, str], field: str) -> None:
    with pytest.raises(FormErrors) as problems:
        checkin(**changes)
    assert field in problems.value.errors


def test_not_asked_is_recorded_with_its_reason(db: Database, clock: FrozenClock) -> None:
    services = make_services(db, clock)
    form = checkin(respondent="not_asked", not_asked_reason="lacks_capacity", answer="")
    result = record_checkin(services=services, checkin=form, by=NURSE, source="slack")
    assert result.note == "Check-in recorded for Ward 7 bed 12: not asked."
    lines = ward_day(services=services, ward="Ward 7", day=date(2026, 12, 1))
    assert lines == ["bed 12 · 09:00 Tue 01 Dec · Not asked: lacks capacity, no family present "
                     "· no answer"]  # fmt: skip


def test_the_last_ward_used_is_remembered_per_person(db: Database, clock: FrozenClock) -> None:
    services = make_services(db, clock)
    assert last_ward(services=services, by=NURSE) is None
    record_checkin(services=services, checkin=checkin(ward="Ward 9"), by=NURSE, source="slack")
    clock.advance(minutes=1)
    record_checkin(services=services, checkin=checkin(ward="Ward 7"), by=NURSE, source="slack")
    assert last_ward(services=services, by=NURSE) == "Ward 7"
