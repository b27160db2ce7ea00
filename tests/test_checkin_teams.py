"""Teams `checkin` through the real adapter over real HTTP (real JWTs), SQLite and PostgreSQL:
the card opens on the last ward used, comes back ready for the next bed, raises a review when
asked (once, however often Teams retries), and puts mistakes beside their inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from reviews.wards import Ward, Wards
from storage.database import Database
from storage.tables import Checkin
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.teams_activities import (
    NURSE,
    OUTREACH,
    TEAMS_ROUTE,
    TeamsBot,
    activity,
    card_of,
    execute,
    outreach_teams_bot,
    teams_bot,
)

FORM = {"ward": "Ward 7", "bed": "12", "respondent": "patient", "answer": "same"}


@pytest.fixture
def bot(db: Database, clock: FrozenClock, ms: FakeMicrosoft) -> Iterator[TeamsBot]:
    with outreach_teams_bot(db, clock, ms) as bot:
        yield bot


def open_form(bot: TeamsBot) -> dict[str, Any]:
    assert bot.post(activity(bot.ms, NURSE, text="checkin")).status_code == 200
    return card_of(bot.ms.posts_to(f"a:personal-{NURSE.teams_id}")[-1].body)


def record(bot: TeamsBot, form_id: str, **values: str) -> dict[str, Any]:
    data = {"rr_form": form_id, **FORM, **values}
    response = bot.post(execute(bot.ms, NURSE, "checkin", data))
    assert response.status_code == 200
    return response.json()["value"]


def ward_in(card: dict[str, Any]) -> str:
    return next(e for e in card["body"] if e.get("id") == "ward").get("value", "")


def form_id(card: dict[str, Any]) -> str:
    return card["actions"][0]["data"]["rr_form"]


def checkins(bot: TeamsBot) -> int:
    with bot.services.db.unit_of_work() as uow:
        return uow.session.exec(select(func.count()).select_from(Checkin)).one()


def test_checkin_card_bed_after_bed_on_the_last_ward(bot: TeamsBot) -> None:
    card = open_form(bot)
    assert card["actions"][0]["verb"] == "checkin" and ward_in(card) == ""
    answer = record(bot, form_id(card))
    assert "Check-in recorded for Ward 7 bed 12: the same." in json.dumps(answer)
    assert ward_in(answer) == "Ward 7" and form_id(answer) != form_id(card)
    answer = record(bot, form_id(answer), bed="14", answer="worse")
    assert "offer them a rapid review" in json.dumps(answer) and checkins(bot) == 2
    assert ward_in(open_form(bot)) == "Ward 7"


def test_a_wish_for_review_raises_it_once_however_often_teams_retries(bot: TeamsBot) -> None:
    card = open_form(bot)
    for _ in range(2):
        answer = record(bot, form_id(card), respondent="family", wants_review="yes")
        assert "RR-0001 raised" in json.dumps(answer)
    assert checkins(bot) == 1
    bot.drain()
    [posted] = bot.ms.posts_to(OUTREACH)
    assert "Family, carer or advocate" in json.dumps(card_of(posted.body))


def test_mistakes_land_beside_their_inputs(bot: TeamsBot) -> None:
    answer = record(bot, form_id(open_form(bot)), respondent="", answer="", bed="")
    shown = json.dumps(answer)
    assert "Choose who answered" in shown and "Enter the bed" in shown
    assert checkins(bot) == 0


def test_with_a_wards_file_the_card_offers_its_wards_and_starts_on_the_last(
    db: Database, clock: FrozenClock, ms: FakeMicrosoft
) -> None:
    wards = Wards((Ward(code="ward-7", name="Ward 7"), Ward(code="cedar", name="Cedar Ward")))
    services = replace(make_services(db, clock, routes=(TEAMS_ROUTE,)), wards=wards)
    with teams_bot(services, ms) as bot:
        card = open_form(bot)
        ward = next(e for e in card["body"] if e.get("id") == "ward")
        assert [c["value"] for c in ward["choices"]] == ["Ward 7", "Cedar Ward"]
        assert "value" not in ward
        record(bot, form_id(card), ward="Cedar Ward")
        card = open_form(bot)
        assert ward_in(card) == "Cedar Ward"
        answer = record(bot, form_id(card), ward="", ward_other="Discharge lounge", bed="3")
        assert "Discharge lounge bed 3" in json.dumps(answer)
        other = next(e for e in open_form(bot)["body"] if e.get("id") == "ward_other")
        assert other["value"] == "Discharge lounge"


def test_a_checkin_that_cannot_be_saved_says_so_with_the_fallback(
    clock: FrozenClock, ms: FakeMicrosoft
) -> None:
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with teams_bot(make_services(unreachable, clock, routes=(TEAMS_ROUTE,)), ms) as bot:
        answer = record(bot, "form-1", wants_review="yes")
    said = json.dumps(answer)
    assert "Check-in NOT recorded" in said and "Bleep the outreach team directly" in said
    unreachable.dispose()


def test_a_listed_ward_typed_in_the_other_box_is_recorded_as_the_listed_ward(
    db: Database, clock: FrozenClock, ms: FakeMicrosoft
) -> None:
    wards = Wards((Ward(code="ward-7", name="Ward 7 (Acute Medicine)"),))
    services = replace(make_services(db, clock, routes=(TEAMS_ROUTE,)), wards=wards)
    with teams_bot(services, ms) as bot:
        answer = record(bot, form_id(open_form(bot)), ward="", ward_other="ward-7", bed="3")
        assert "Ward 7 (Acute Medicine) bed 3" in json.dumps(answer)
