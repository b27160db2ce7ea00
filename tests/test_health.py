"""GET /healthz: 200 with figures when the database answers, 503 when it does not."""

from __future__ import annotations

import requests

from handlers.http import make_http_app
from storage.database import Database
from tests.support.http import serve


def test_healthy_when_the_database_answers(db):
    with serve(make_http_app(db, [])) as url:
        response = requests.get(f"{url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "open_requests": 0,
        "outbox_pending": 0,
        "outbox_failed": 0,
    }


def test_unavailable_when_the_database_does_not_answer(tmp_path):
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with serve(make_http_app(unreachable, [])) as url:
        response = requests.get(f"{url}/healthz", timeout=20)
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
