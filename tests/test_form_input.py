"""What a person may type, checked in the core: ASCII digits only, no control or bidi
characters, every free-text field bounded. The same rules hold for Slack, Teams and the shell."""

from __future__ import annotations

import pytest

from reviews import service
from reviews.model import FormErrors, Outcome, clean_text
from storage.database import Database
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota, request
from tests.support.clock import FrozenClock


@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("news2", "²"),  # "²".isdigit() is True, int("²") raises
        ("news2", "６"),  # full-width six
        ("nhs_number", "９９９０００００１８"),  # a valid test number, in full-width digits
        ("nhs_number", "999000001٨"),  # an Arabic-Indic eight at the end
        ("callback_number", "０７７００ ９００１２３"),
    ],
)
def test_only_ascii_digits_count_as_digits(field: str, typed: str) -> None:
    with pytest.raises(FormErrors) as refused:
        request(**{field: typed})
    assert set(refused.value.errors) == {field}


def test_ascii_digits_with_spaces_and_hyphens_still_pass() -> None:
    valid = request(nhs_number="999 000 0018", news2=" 6 ", callback_number="+44 7700 900123")
    assert (valid.nhs_number, valid.news2) == ("9990000018", 6)


def test_control_and_bidi_characters_are_stripped_from_free_text() -> None:
    # U+202E reverses what follows on screen; U+200B is invisible; NUL breaks PostgreSQL text.
    valid = request(ward="Ward\u202e 7\x00", bed="1\u200b2", concern="Short of\tbreath\r\nand grey")
    assert (valid.ward, valid.bed) == ("Ward 7", "12")
    assert valid.concern == "Short of breath\nand grey"


def test_clean_text_keeps_what_people_write() -> None:
    assert clean_text("  Mrs O'Brien — bay 3, café  ") == "Mrs O'Brien — bay 3, café"
    assert clean_text("line one\u2028line two", multiline=True) == "line one\nline two"
    assert clean_text("\ud800lone surrogate") == "lone surrogate"


def test_a_concern_over_the_limit_is_refused() -> None:
    with pytest.raises(FormErrors) as refused:
        request(concern="x" * 2001)
    assert set(refused.value.errors) == {"concern"}


def raised_and_on_rota(db: Database, clock: FrozenClock) -> service.Services:
    services = make_services(db, clock)
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, start=clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    return services


def state(services: service.Services) -> tuple[str, str | None, str | None]:
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(1)
        assert review is not None
        return review.state, review.cancel_reason, review.outcome_detail


def test_a_cancel_reason_is_bounded_and_cleaned(db: Database, clock: FrozenClock) -> None:
    services = raised_and_on_rota(db, clock)
    with pytest.raises(service.BadInput) as refused:
        service.cancel(services=services, review_id=1, by=NURSE, reason="r" * 501)
    assert "500 characters" in str(refused.value) and refused.value.errors.keys() == {"reason"}
    assert state(services) == ("raised", None, None)
    service.cancel(services=services, review_id=1, by=NURSE, reason=" wrong\u202e bed\x07 ")
    assert state(services) == ("cancelled", "wrong bed", None)


def test_an_outcome_note_is_bounded_and_cleaned(db: Database, clock: FrozenClock) -> None:
    services = raised_and_on_rota(db, clock)
    with pytest.raises(service.BadInput) as refused:
        service.record_outcome(
            services=services, review_id=1, by=OUTREACH, outcome=Outcome.NO_CHANGE, detail="n" * 501
        )
    assert refused.value.errors.keys() == {"note"}
    assert state(services) == ("raised", None, None)
    service.record_outcome(
        services=services, review_id=1, by=OUTREACH, outcome=Outcome.NO_CHANGE, detail="ok\u2066"
    )
    assert state(services) == ("closed", None, "ok")


def test_a_transfer_still_names_where_to(db: Database, clock: FrozenClock) -> None:
    services = raised_and_on_rota(db, clock)
    with pytest.raises(service.BadInput) as refused:
        service.record_outcome(
            services=services, review_id=1, by=OUTREACH, outcome=Outcome.TRANSFER, detail="Mars"
        )
    assert "ICU" in str(refused.value)
