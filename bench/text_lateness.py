"""Text and page lateness through the real bot, beside the direct messages' lateness.

    .venv/bin/python bench/text_lateness.py [--requests 100] [--run 20] [--postgres] [--replicas 1]
                                            [--slack-latency MS]

The workload of bench/escalation_lateness.py (the same ladder in seconds, reviews raised over
~10 seconds), with `sms = true` on every level and every role holder carrying a pager (the
gateway) or a mobile (GOV.UK Notify): each level's direct messages and texts leave together.
A text's lateness is its arrival at the fake gateway or fake Notify minus the moment its level
was due; a direct message's, its arrival at the fake Slack. Prints p50/p90/p99/max. No asserts.
"""

from __future__ import annotations

import re
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.escalation_lateness import (  # noqa: E402
    AFTER,
    POLICY,
    REPEAT_EVERY,
    bench_main,
    lateness,
    report,
)
from reviews import service  # noqa: E402
from reviews.clock import SystemClock  # noqa: E402
from reviews.policy import load_policy  # noqa: E402
from storage.database import Database  # noqa: E402
from tests.support.builders import NURSE, make_services, on_rota, request  # noqa: E402
from tests.support.fake_texts import (  # noqa: E402
    NOTIFY_API_KEY,
    NOTIFY_TEMPLATE_ID,
    PAGER_SECRET,
    FakeNotify,
    FakePager,
)
from tests.support.process import BotProcess, bot_environment  # noqa: E402
from tests.support.timed_slack import TimedSlack  # noqa: E402

TEXTING_POLICY = POLICY.replace('notify = ["', 'sms = true\nnotify = ["')
ROTA = (
    ("outreach", "U01ALEX", {"pager": "BLEEP-1001"}),
    ("outreach-backup", "U01SAM", {"mobile": "+447700900101"}),
    ("icu-registrar", "U01IRIS", {"pager": "BLEEP-1003"}),
    ("site-manager", "U01MO", {"mobile": "+447700900104"}),
)
LEVEL = re.compile(r"\(level (\d+)\)")


def start_bot(outside: tuple[TimedSlack, FakeNotify, FakePager], url: str, policy: Path):
    slack, notify, pager = outside
    env = bot_environment(
        SLACK_BOT_TOKEN="xoxb-bench",
        SLACK_SIGNING_SECRET="bench",
        SLACK_API_URL=slack.url,
        OUTREACH_CHANNEL="C0OUTREACH",
        DIGEST_CHANNEL="C0DIGEST",
        HOST="127.0.0.1",
        PORT="0",
        DATABASE_URL=url,
        ESCALATION_POLICY=str(policy),
        LOG_LEVEL="INFO",
        NOTIFY_API_KEY=NOTIFY_API_KEY,
        NOTIFY_SMS_TEMPLATE_ID=NOTIFY_TEMPLATE_ID,
        NOTIFY_BASE_URL=notify.url,
        PAGER_WEBHOOK_URL=pager.url + "/page",
        PAGER_WEBHOOK_SECRET=PAGER_SECRET,
    )
    bot = BotProcess(env=env)
    bot.wait_for("Uvicorn running", timeout=60)
    return bot


def text_lateness(notify: FakeNotify, pager: FakePager, raised: dict[str, float]) -> list[float]:
    """Seconds late per text or page. The text does not carry its repeat: the n-th arrival
    for one (person, review, level) is taken as repeat n."""
    arrivals: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for call in pager.delivered():
        body = call.body
        arrivals[(body["to"], body["reference"], body["level"])].append(call.arrived)
    for call in notify.delivered():
        level = int(LEVEL.findall(call.body["personalisation"]["message"])[0])
        key = (call.body["phone_number"], call.body["reference"], level)
        arrivals[key].append(call.arrived)
    late = []
    for (_to, reference, level), times in arrivals.items():
        for repeat, arrived in enumerate(sorted(times)):
            late.append(arrived - (raised[reference] + AFTER[level] + repeat * REPEAT_EVERY))
    return late


def run(
    url: str, requests: int, run_for: float, replicas: int, workdir: Path, latency: float
) -> None:
    policy_path = workdir / "escalation.toml"
    policy_path.write_text(TEXTING_POLICY)
    db = Database(url)
    start = datetime.now(UTC) - timedelta(hours=1)
    for role, user, contact in ROTA:
        person = on_rota(db, role, role.title(), user, start, hours=4)
        with db.unit_of_work() as uow:
            for key, value in contact.items():
                setattr(uow.rota.staff(person.id or 0), key, value)
    ward = make_services(db, SystemClock(), policy=load_policy(policy_path))
    ward = replace(ward, texting=("pager", "notify"))  # as the bot's own: level 0 texts at raise
    with TimedSlack(latency=latency) as slack, FakeNotify() as notify, FakePager() as pager:
        outside = (slack, notify, pager)
        bots = [start_bot(outside, url, policy_path) for _ in range(replicas)]
        raised: dict[str, float] = {}
        began = time.monotonic()
        try:
            for number in range(requests):
                review = service.raise_review(
                    services=ward, request=request(news2=""), by=NURSE
                ).review
                raised[f"RR-{review.id:04d}"] = review.raised_at.timestamp()
                time.sleep(max(0.0, began + (number + 1) * 10 / requests - time.monotonic()))
            time.sleep(run_for)
        finally:
            for bot in bots:
                bot.process.terminate()
            for bot in bots:
                bot.process.wait(timeout=30)
        print(f"{requests} open requests, {replicas} bot process(es), sms = true on every level")
        for name, values in lateness(slack, raised).items():
            report(f"DM {name}", values)
        report("text or page, all levels", text_lateness(notify, pager, raised))
    db.dispose()


def main() -> None:
    bench_main(run, __doc__ or "", requests=100, seconds=20.0)


if __name__ == "__main__":
    main()
