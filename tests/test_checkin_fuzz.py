"""Hostile and broken check-ins, generated (hypothesis), beside tests/test_fuzz.py: the Slack
check-in modal through the real bolt app, and the family's daily view over HTTP. Whatever
arrives, the answer is clear, never a 500 or an unhandled exception, and nothing is stored from
what is rejected.

Examples per target, on SQLite and PostgreSQL each: Slack check-in form 50, daily view 30.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import requests
from hypothesis import given
from hypothesis import strategies as st

from handlers.slack.checkin import CHECKIN_FORM
from storage.database import Database
from storage.tables import Checkin, Review
from tests.support.public_pages import PublicPages
from tests.support.slack_requests import radio, text_value, view_submission
from tests.test_fuzz import TYPED, Slack, count, fuzz, slack  # noqa: F401 - fixtures

CHOICE = st.one_of(
    TYPED,
    st.sampled_from(["patient", "family", "not_asked", "better", "same", "worse", "asleep"]),
)
TEXT_FIELDS = ("ward", "bed", "worries")
CHOICE_FIELDS = ("respondent", "answer", "not_asked_reason")


def checkin_values(typed: dict[str, str], wants: bool) -> dict[str, Any]:
    values: dict[str, Any] = {name: {"value": text_value(typed[name])} for name in TEXT_FIELDS}
    values.update({name: {"value": radio(typed[name] or None)} for name in CHOICE_FIELDS})
    chosen = [{"value": "yes"}] if wants else []
    values["wants_review"] = {"value": {"type": "checkboxes", "selected_options": chosen}}
    return values


@fuzz(50)
@given(
    typed=st.fixed_dictionaries(
        {**{n: TYPED for n in TEXT_FIELDS}, **{n: CHOICE for n in CHOICE_FIELDS}}
    ),
    wants=st.booleans(),
    metadata=st.one_of(st.just('{"count": 0}'), TYPED),
)
def test_slack_checkin_form(
    slack: Slack,  # noqa: F811 - the fixture
    db: Database,
    typed: dict[str, str],
    wants: bool,
    metadata: str,
) -> None:
    before = count(db, Checkin), count(db, Review)
    status, body = slack.send(
        view_submission(
            CHECKIN_FORM,
            checkin_values(typed, wants),
            user_id="U0WARDNURSE",
            view_id=f"V{uuid.uuid4().hex}",
            private_metadata=metadata,
        )
    )
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] in ("errors", "update")
    if answer["response_action"] == "errors" or "NOT recorded" in body:
        assert (count(db, Checkin), count(db, Review)) == before


DAILY_FIELDS = ("caller", "answer", "bed", "worries", "wants_review", "your_name",
                "relationship", "patient_name", "callback_number")  # fmt: skip


@fuzz(30)
@given(typed=st.fixed_dictionaries({name: TYPED for name in DAILY_FIELDS}), forged=st.booleans())
def test_public_daily_view(
    site: PublicPages,
    db: Database,
    typed: dict[str, str],
    forged: bool,
) -> None:
    token = "forged" if forged else today_token(site)
    before = count(db, Checkin), count(db, Review)
    answer = requests.post(
        f"{site.url}/concern/ward-7/today", data={**typed, "token": token}, timeout=10
    )
    assert answer.status_code < 500 and "Traceback" not in answer.text
    if answer.status_code >= 400:
        assert (count(db, Checkin), count(db, Review)) == before


def today_token(pages: PublicPages) -> str:
    page = requests.get(f"{pages.url}/concern/ward-7/today", timeout=10)
    match = re.search(r'name="token" value="([^"]+)"', page.text)
    assert match
    return match[1]
