"""The bot as bot.py builds it for a Teams-only trust: one HTTP app, the Teams sender, the core."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import requests

import bot as rapidreview
from reviews.outbox import drain
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.http import serve
from tests.support.process import BotProcess, bot_environment, free_port
from tests.support.teams_activities import (
    OUTREACH,
    activity,
    execute,
    on_teams_rota,
    person,
    teams_environment,
    teams_settings,
)
from tests.support.waiting import eventually
from tests.test_teams_flow import FORM

NURSE = person("Wendy Ward", "0a0a0a0a-0000-4000-8000-000000000001")
ALEX = person("Alex Carter", "a1e0a1e0-0000-4000-8000-000000000002")


def test_a_teams_only_bot_takes_a_request_end_to_end(
    database_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    with FakeMicrosoft(tmp_path) as ms:
        settings = replace(teams_settings(ms), database_url=database_url)
        bot = rapidreview.build(settings, clock=clock, teams_options={"http_client": ms.session()})
        assert [r.platform for r in bot.services.routes] == ["teams"]
        on_teams_rota(
            bot.services.db,
            "outreach",
            ALEX.name,
            ALEX.aad_object_id,
            clock.now() - timedelta(hours=1),
        )

        with serve(bot.http_app) as url:

            def post(body: dict) -> requests.Response:
                token = ms.token(service_url=body["serviceUrl"])
                return requests.post(
                    f"{url}/api/messages",
                    json=body,
                    timeout=10,
                    headers={"Authorization": f"Bearer {token}"},
                )

            assert requests.get(f"{url}/healthz", timeout=10).json()["status"] == "ok"
            raised = post(execute(ms, NURSE, "raise", {"rr_form": "f9", **FORM})).json()
            assert "RR-0001 raised" in str(raised["value"])
            drain(bot.services, bot.senders)
            assert len(ms.posts_to(OUTREACH)) == 1
            acknowledged = post(execute(ms, ALEX, "acknowledge", {"review": 1}, personal=False))
            assert "Acknowledged by Alex Carter" in str(acknowledged.json()["value"])
            assert post(activity(ms, NURSE, text="open")).status_code == 200
            assert requests.post(f"{url}/api/messages", json={}, timeout=10).status_code == 401
        bot.services.db.dispose()


@pytest.mark.slow
def test_outbound_https_trusts_the_bundle_named_by_ssl_cert_file(
    database_url: str, tmp_path: Path
) -> None:
    """CONTRACT.md: outbound HTTPS trusts "the bundle named by SSL_CERT_FILE / REQUESTS_CA_BUNDLE
    when set". requests (msal's token, the Bot Connector) reads only REQUESTS_CA_BUNDLE by
    itself; the real process, given SSL_CERT_FILE alone, still gets its token and answers."""
    port = free_port()
    with FakeMicrosoft(tmp_path) as ms:
        env = bot_environment(
            **teams_environment(ms),
            SSL_CERT_FILE=str(ms.ca_file),
            DATABASE_URL=database_url,
            HOST="127.0.0.1",
            PORT=str(port),
        )
        env.pop("REQUESTS_CA_BUNDLE", None)
        env.pop("CURL_CA_BUNDLE", None)
        bot = BotProcess(env=env)
        try:
            bot.wait_for("Uvicorn running", timeout=60)
            body = activity(ms, NURSE, text="help")
            token = ms.token(service_url=body["serviceUrl"])
            answer = requests.post(
                f"http://127.0.0.1:{port}/api/messages",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert answer.status_code == 200
            eventually(
                lambda: any("`rota`" in json.dumps(c.body) for c in ms.connector_calls()),
                "the help, sent back through the Bot Connector over https",
            )
        finally:
            bot.stop()
    assert not [line for line in bot.log if "CERTIFICATE_VERIFY_FAILED" in line]
