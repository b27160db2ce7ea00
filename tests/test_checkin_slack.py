"""`/rapidreview checkin` through the real bolt app over real HTTP, on SQLite and PostgreSQL:
the modal opens on the last ward used, each submission comes back ready for the next bed, a
wish for a review raises one that reaches the outreach team, "worse" tells the nurse what to do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from handlers.slack.checkin import CHECKIN_FORM
from reviews.wards import Ward, Wards
from storage.database import Database
from storage.tables import Checkin
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    OUTREACH_NURSE,
    SlackBot,
    outreach_slack_bot,
    radio,
    slack_bot,
    slash_command,
    text_value,
    view_submission,
)

NURSE, ALEX = "U0WARDNURSE", OUTREACH_NURSE


@pytest.fixture
def bot(db: Database, clock: FrozenClock, fake: FakeSlack) -> Iterator[SlackBot]:
    with outreach_slack_bot(db, clock, fake) as bot:
        yield bot


def checkin_form(wants_review: bool = False, **fields: str) -> dict[str, Any]:
    """The check-in modal's state.values, as a ward nurse fills it in."""
    typed = {"ward": "Ward 7", "bed": "12", "worries": "", **fields}
    values: dict[str, Any] = {
        name: {"value": text_value(typed[name])} for name in ("ward", "bed", "worries")
    }
    values["respondent"] = {"value": radio(fields.get("respondent", "patient"))}
    values["answer"] = {"value": radio(fields.get("answer", "same"))}
    reason = fields.get("not_asked_reason")
    values["not_asked_reason"] = {
        "value": {"type": "static_select", "selected_option": {"value": reason} if reason else None}
    }
    chosen = [{"value": "yes"}] if wants_review else []
    values["wants_review"] = {"value": {"type": "checkboxes", "selected_options": chosen}}
    return values


def submit(bot: SlackBot, values: dict[str, Any], view_id: str = "V0CHECK", count: int = 0):
    request = view_submission(
        CHECKIN_FORM,
        values,
        user_id=NURSE,
        view_id=view_id,
        private_metadata=json.dumps({"count": count}),
    )
    response = bot.post(request)
    assert response.status_code == 200
    return response.json(), request


def checkins(bot: SlackBot) -> int:
    with bot.services.db.unit_of_work() as uow:
        return uow.session.exec(select(func.count()).select_from(Checkin)).one()


def ward_of(view: dict[str, Any]) -> str:
    block = next(b for b in view["blocks"] if b.get("block_id") == "ward")
    return block["element"].get("initial_value", "")


def test_a_nurse_records_bed_after_bed_on_the_ward_they_used_last(
    bot: SlackBot, fake: FakeSlack
) -> None:
    started = time.perf_counter()
    assert bot.post(slash_command("checkin", trigger_id="trig-c1")).status_code == 200
    [opened] = fake.wait_for("views.open")
    open_ms = (time.perf_counter() - started) * 1000
    assert opened.body["trigger_id"] == "trig-c1"
    assert opened.body["view"]["callback_id"] == CHECKIN_FORM and ward_of(opened.body["view"]) == ""

    started = time.perf_counter()
    answer, _ = submit(bot, checkin_form())
    submit_ms = (time.perf_counter() - started) * 1000
    print(f"check-in modal: opened in {open_ms:.0f} ms, submitted in {submit_ms:.0f} ms")
    assert answer["response_action"] == "update"
    next_form = answer["view"]
    assert next_form["callback_id"] == CHECKIN_FORM and ward_of(next_form) == "Ward 7"
    assert "Check-in recorded for Ward 7 bed 12: the same." in json.dumps(next_form)

    # The same modal, next bed: a new submission, not a retry of the first.
    answer, _ = submit(bot, checkin_form(bed="14", answer="better"), count=1)
    assert "Ward 7 bed 14: better" in json.dumps(answer["view"]) and checkins(bot) == 2

    bot.post(slash_command("checkin", trigger_id="trig-c2"))
    assert ward_of(fake.wait_for("views.open", 2)[1].body["view"]) == "Ward 7"


def test_worse_tells_the_nurse_to_offer_a_review_and_repeat_observations(
    bot: SlackBot, fake: FakeSlack
) -> None:
    answer, _ = submit(bot, checkin_form(answer="worse"))
    said = json.dumps(answer["view"])
    assert "offer them a rapid review" in said and "repeat their observations now" in said
    bot.drain()
    assert not [c for c in fake.called("chat.postMessage") if c.body["channel"] == "C0OUTREACH"]


def test_a_wish_for_review_raises_one_that_reaches_the_outreach_team(
    bot: SlackBot, fake: FakeSlack
) -> None:
    answer, request = submit(
        bot, checkin_form(respondent="family", answer="worse", wants_review=True)
    )
    assert "RR-0001 raised" in json.dumps(answer["view"])
    again = bot.post(request.retried()).json()  # Slack retrying the same submission
    assert "RR-0001" in json.dumps(again) and checkins(bot) == 1
    bot.drain()
    card = next(c for c in fake.called("chat.postMessage") if c.body["channel"] == "C0OUTREACH")
    assert "Family, carer or advocate, from a daily check-in" in json.dumps(card.body)
    assert any(c.body["channel"] == ALEX for c in fake.called("chat.postMessage"))


def test_mistakes_come_back_on_their_fields(bot: SlackBot) -> None:
    answer, _ = submit(bot, checkin_form(bed="", respondent="not_asked", answer=""))
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"bed", "not_asked_reason"}
    assert checkins(bot) == 0


def test_with_a_wards_file_the_form_offers_its_wards_and_starts_on_the_last(
    db: Database, clock: FrozenClock, fake: FakeSlack
) -> None:
    wards = Wards((Ward(code="ward-7", name="Ward 7"), Ward(code="cedar", name="Cedar Ward")))
    with slack_bot(replace(make_services(db, clock), wards=wards), fake) as bot:
        bot.post(slash_command("checkin"))
        view = fake.wait_for("views.open")[0].body["view"]
        ward = next(b for b in view["blocks"] if b.get("block_id") == "ward")["element"]
        assert [o["value"] for o in ward["options"]] == ["Ward 7", "Cedar Ward"]
        assert "initial_option" not in ward
        values = checkin_form(ward="")
        values["ward"] = {
            "value": {"type": "static_select", "selected_option": {"value": "Cedar Ward"}}
        }
        answer, _ = submit(bot, values)
        assert "Check-in recorded for Cedar Ward bed 12" in json.dumps(answer["view"])
        bot.post(slash_command("checkin"))
        view = fake.wait_for("views.open", 2)[1].body["view"]
        ward = next(b for b in view["blocks"] if b.get("block_id") == "ward")["element"]
        assert ward["initial_option"]["value"] == "Cedar Ward"
        # A ward not in the file may still be typed, and is pre-filled next time.
        values = {**checkin_form(ward=""), "ward_other": {"value": text_value("Discharge lounge")}}
        submit(bot, values, count=1)
        bot.post(slash_command("checkin"))
        view = fake.wait_for("views.open", 3)[2].body["view"]
        other = next(b for b in view["blocks"] if b.get("block_id") == "ward_other")["element"]
        assert other["initial_value"] == "Discharge lounge"


def test_a_checkin_that_cannot_be_saved_says_so_with_the_fallback(
    clock: FrozenClock, fake: FakeSlack
) -> None:
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with slack_bot(make_services(unreachable, clock), fake) as bot:
        answer, _ = submit(bot, checkin_form(wants_review=True))
    said = json.dumps(answer["view"])
    assert "Check-in NOT recorded" in said and "Bleep the outreach team directly" in said
    unreachable.dispose()


def test_a_listed_ward_typed_in_the_other_box_is_recorded_as_the_listed_ward(
    db: Database, clock: FrozenClock, fake: FakeSlack
) -> None:
    # A nurse who types "Ward 7", or the code "cedar", in the box for a ward not on the list
    # means the listed ward: recorded under another name, its check-ins would be missing from
    # its ward's count in the prompt and the digest ("wards with none").
    wards = Wards(
        (
            Ward(code="ward-7", name="Ward 7 (Acute Medicine)"),
            Ward(code="cedar", name="Cedar Ward (Surgery)"),
        )
    )
    with slack_bot(replace(make_services(db, clock), wards=wards), fake) as bot:
        for typed, recorded in [
            ("Ward 7", "Ward 7 (Acute Medicine)"),
            ("CEDAR", "Cedar Ward (Surgery)"),
            (" ward 7 (acute medicine) ", "Ward 7 (Acute Medicine)"),
            ("Discharge lounge", "Discharge lounge"),
        ]:
            values = {**checkin_form(ward=""), "ward_other": {"value": text_value(typed)}}
            answer, _ = submit(bot, values)
            assert f"Check-in recorded for {recorded} bed 12" in json.dumps(answer["view"])
