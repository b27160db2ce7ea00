"""People's words never mention, notify or link anyone, on either platform.

What a nurse or relative types (the concern, a cancel reason) travels through the real adapters
over real HTTP; the assertions are on what the fake Slack and the fake Bot Connector received:
the notification text as well as the blocks and cards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.slack.forms import REQUEST_FORM
from reviews.notify import Route
from storage.database import Database
from tests.support.builders import FILLED_FORM, make_services
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    cancel_submission,
    request_form,
    slack_bot,
    view_submission,
)
from tests.support.teams_activities import DIGEST, OUTREACH, TeamsBot, execute, person, teams_bot

SLACK_CONCERN = "Sats 88% <!channel> <!here> ask <@U01ALEX> or <https://evil.example|Acknowledge>"
SLACK_MARKUP = ("<!channel>", "<!here>", "<@U01ALEX>", "<https://evil.example|")
TEAMS_CONCERN = "Sats 88% [Acknowledge](https://evil.example) <at>Alex Carter</at>"
TEAMS_MARKUP = ("[Acknowledge](https", "<at>", "<a href", "](https")
NURSE = "U0WARDNURSE"


def test_slack_notification_text_and_blocks_carry_no_mention_or_link(
    db: Database, clock: FrozenClock
) -> None:
    with FakeSlack() as fake, slack_bot(make_services(db, clock), fake) as bot:
        form = request_form(concern=SLACK_CONCERN)
        assert bot.post(view_submission(REQUEST_FORM, form, user_id=NURSE)).status_code == 200
        cancel = cancel_submission(
            "Wrong bed <!channel> <https://evil.example|here>", user_id=NURSE
        )
        assert bot.post(cancel).status_code == 200
        bot.drain()
        sent = [c.body for c in fake.calls if c.method in ("chat.postMessage", "chat.update")]
    assert len(sent) >= 3  # the card, its update and a thread line at least
    for body in sent:
        for part in (body.get("text", ""), json.dumps(body.get("blocks", []))):
            assert not any(markup in part for markup in SLACK_MARKUP), part
    # The first post to the outreach channel (a cover-gap notice to the digest channel may go
    # at the same moment: destinations are sent to side by side).
    card = next(body for body in sent if body["channel"] == "C0OUTREACH")
    assert "&lt;!channel&gt;" in card["text"] + json.dumps(card["blocks"])  # shown, as typed


@pytest.fixture
def teams(db: Database, clock: FrozenClock, tmp_path: Path) -> Iterator[TeamsBot]:
    route = Route(platform="teams", outreach_channel=OUTREACH, digest_channel=DIGEST)
    with (
        FakeMicrosoft(tmp_path) as ms,
        teams_bot(make_services(db, clock, routes=(route,)), ms) as bot,
    ):
        yield bot


def test_teams_cards_and_texts_carry_no_link_mention_or_html(teams: TeamsBot) -> None:
    nurse = person("Wendy Ward", "0a0a0a0a-0000-4000-8000-000000000001")
    form = {**FILLED_FORM, "concern": TEAMS_CONCERN, "rr_form": "f1"}
    raised = teams.post(execute(teams.ms, nurse, "raise", form, personal=True))
    assert raised.status_code == 200
    reason = "Wrong bed <a href='https://evil.example'>[see](https://evil.example)</a>"
    cancelled = teams.post(execute(teams.ms, nurse, "cancel", {"review": 1, "reason": reason}))
    assert cancelled.status_code == 200
    teams.drain()
    sent = [c.body for c in teams.ms.connector_calls() if c.body]
    shown = [json.dumps(body, ensure_ascii=False) for body in sent]
    shown.append(json.dumps(cancelled.json(), ensure_ascii=False))
    assert any("Sats 88%" in text for text in shown)  # the card went out
    for text in shown:
        assert not any(markup in text for markup in TEAMS_MARKUP), text
