"""A database error's text never carries a patient's details: tracebacks reach the log (a
failed job, bolt's own error line) with the error's message, and SQLAlchemy's message quotes
the statement's parameters unless told not to. Real SQLite and PostgreSQL."""

from __future__ import annotations

import traceback

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from reviews.service import add_review
from storage.database import Database, DatabaseUnavailable
from tests.support.builders import FILLED_FORM, NURSE, make_services, request
from tests.support.clock import FrozenClock


def test_a_failed_insert_does_not_quote_the_patients_details(
    db: Database, clock: FrozenClock
) -> None:
    services = make_services(db, clock)
    for _ in range(2):  # the second breaks the unique submission key
        try:
            with db.unit_of_work() as uow:
                add_review(uow, services, request(), NURSE, now=clock.now(), submission_key="k1")
        except IntegrityError as error:
            told = "".join(traceback.format_exception(error))
            break
    else:
        pytest.fail("the duplicate submission key was accepted")
    assert "review" in told.lower()  # still says what failed
    for detail in ("9990000018", "07700", FILLED_FORM["concern"]):
        assert detail not in told


def test_a_row_the_database_refuses_is_not_quoted_back(db: Database, clock: FrozenClock) -> None:
    # PostgreSQL's own message for a NOT NULL or CHECK failure lists the whole row.
    services = make_services(db, clock)
    with pytest.raises(IntegrityError) as refused:
        with db.unit_of_work() as uow:
            review = add_review(uow, services, request(), NURSE, now=clock.now())
            review.ward = None  # type: ignore[assignment]
    told = "".join(traceback.format_exception(refused.value))
    assert "ward" in told  # still says what failed
    for detail in ("9990000018", "07700", FILLED_FORM["concern"]):
        assert detail not in told


def test_a_database_refusing_a_write_does_not_quote_the_patients_details(
    db: Database, clock: FrozenClock
) -> None:
    # Not a constraint but the database itself saying no (read-only, its disk full): the error
    # is DatabaseUnavailable, and the driver's message it was raised from comes with it.
    services = make_services(db, clock)
    read_only = "PRAGMA query_only = ON" if db.is_sqlite else "SET TRANSACTION READ ONLY"
    with pytest.raises(DatabaseUnavailable) as refused:
        with db.unit_of_work() as uow:
            uow.session.execute(text(read_only))
            add_review(uow, services, request(), NURSE, now=clock.now())
    told = "".join(traceback.format_exception(refused.value))
    assert "INSERT INTO review" in told  # still says what failed
    for detail in ("9990000018", "07700", FILLED_FORM["concern"]):
        assert detail not in told
