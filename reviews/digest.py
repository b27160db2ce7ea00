"""The managers' daily digest: did Martha's Rule work in the 24 hours to DIGEST_TIME?

A digest day D covers [DIGEST_TIME on D-1, DIGEST_TIME on D) in local time, so the day the
clocks change is 23 or 25 hours long. Every replica runs digest_job(); a digest_run row per
(day, destination) lets exactly one of them post. Nothing here names a patient: references,
wards and urgencies only.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from reviews import chart_apart
from reviews.context import Actor, Services
from reviews.digest_figures import Digest, Figures, Window
from reviews.digest_text import render
from reviews.messages import Attachment, Message
from reviews.permissions import check_manager
from storage.checkins import WardCheckins
from storage.database import UnitOfWork

log = logging.getLogger(__name__)

TREND_DAYS = 7
CHART_DAYS = 14
OPEN_LISTED = 15
# A digest posted more than this after DIGEST_TIME says it is late (the job ticks every 30 s).
LATE_AFTER = timedelta(minutes=10)


def window_for(services: Services, day: date, days: int = 1) -> Window:
    """The `days` local days ending at DIGEST_TIME on `day`, in UTC."""

    def at(d: date) -> datetime:
        return datetime.combine(d, services.digest_time, tzinfo=services.timezone).astimezone(UTC)

    return Window(start=at(day - timedelta(days=days)), end=at(day))


def latest_day(services: Services, now: datetime | None = None) -> date:
    """The latest day whose DIGEST_TIME has passed."""
    now = now or services.clock.now()
    day = now.astimezone(services.timezone).date()
    return day if window_for(services, day).end <= now else day - timedelta(days=1)


def gather(uow: UnitOfWork, window: Window) -> Figures:
    """The figures for requests raised in `window`, as known at its end."""
    start, end = window.start, window.end
    store = uow.digest
    by_caller = store.count_by("caller", start, end)
    acknowledge = store.spreads("acknowledge", start, end)
    acknowledge.update(store.spreads("acknowledge", start, end, per_urgency=False))
    attend = store.spreads("attend", start, end)
    attend.update(store.spreads("attend", start, end, per_urgency=False))
    texts_sent, texts_failed = store.texts(start, end)
    return Figures(
        window=window,
        raised=sum(by_caller.values()),
        by_caller=by_caller,
        by_concern=store.count_by("concern_kind", start, end),
        by_ward=store.count_by("ward", start, end),
        timings=store.timings(start, end),
        acknowledge=acknowledge,
        attend=attend,
        outcomes=store.outcomes(start, end),
        escalations=store.escalations(start, end),
        cover_gaps=store.event_count("cover_gap", start, end),
        delivery_failures=store.event_count("delivery_failed", start, end),
        delivery_delays=store.event_count("delivery_delayed", start, end),
        texts_sent=texts_sent,
        texts_failed=texts_failed,
    )


def collect(services: Services, day: date) -> Digest:
    """Every figure for `day`'s digest, read in one transaction. A day not over yet is
    counted as it stands now: a request raised a minute ago has missed no target yet."""
    window = window_for(services, day)
    now = services.clock.now()
    complete = window.end <= now
    if not complete:  # up to and including this moment
        window = Window(window.start, max(window.start, now + timedelta(microseconds=1)))
    trend = Window(window_for(services, day - timedelta(days=1), TREND_DAYS).start, window.start)
    chart_days = [day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    boundaries = [window_for(services, chart_days[0]).start] + [
        window_for(services, d).end for d in chart_days
    ]
    with services.db.reading() as uow:
        figures, before = gather(uow, window), gather(uow, trend)
        open_total, open_oldest = uow.digest.open_at(window.end, OPEN_LISTED)
        by_caller, acknowledge = uow.digest.daily(boundaries)
        checkins = uow.checkins.per_ward(window.start, window.end)
        recent = uow.checkins.per_ward(trend.start, trend.end)
        chart_checkins = uow.checkins.daily(boundaries)
    return Digest(
        day,
        figures,
        before,
        open_total,
        open_oldest,
        chart_days,
        by_caller,
        acknowledge,
        checkins=checkins,
        wards_without_checkins=without_checkins(services, checkins, recent),
        chart_checkins=chart_checkins,
        complete=complete,
    )


def without_checkins(
    services: Services, now: list[WardCheckins], recent: list[WardCheckins]
) -> list[str]:
    """Wards with no check-in in the window: the wards file's, and any other ward that had one
    in the 7 days before."""
    seen = {ward.ward for ward in now}
    listed = [name for name in services.wards.names() if name not in seen]
    others = sorted({ward.ward for ward in recent} - seen - set(listed))
    return listed + others


def digest_for(*, services: Services, by: Actor) -> str:
    """The latest digest's text for a manager to read privately; NotAllowed for anyone else."""
    check_manager(services, by, "the digest")
    return digest_text(services)


def digest_text(services: Services, *, day: date | None = None) -> str:
    """The digest's text alone, for a manager's command or the command line to print: its chart
    is drawn only to be posted (a child process importing matplotlib, about 2 s of CPU)."""
    digest = collect(services, day or latest_day(services))
    return render(digest, services.timezone, services.digest_time)


def build_digest(services: Services, *, day: date | None = None, late: bool = False) -> Message:
    """The digest for the 24 hours ending at DIGEST_TIME on `day` (default: the latest that has
    passed), with its chart attached. DatabaseUnavailable if the figures cannot be read."""
    digest = collect(services, day or latest_day(services))
    text = render(digest, services.timezone, services.digest_time, late=late)
    try:
        png = chart_apart.render(
            days=digest.chart_days,
            by_caller=digest.chart_by_caller,
            acknowledge=digest.chart_acknowledge,
            checkins=digest.chart_checkins,
        )
    except chart_apart.ChartError as error:
        log.error("digest chart not drawn (%s): the figures go without it", error)
        return Message(text=text)
    name = f"rapidreview-digest-{digest.day.isoformat()}.png"
    title = f"Requests and time to acknowledge, {CHART_DAYS} days to {digest.day:%d %b %Y}"
    return Message(
        text=text,
        attachments=(Attachment.of(name, title, png),),
    )


def destinations(services: Services) -> list[tuple[str, str]]:
    """(platform, digest channel) for every platform with a digest channel configured."""
    return [(r.platform, r.digest_channel) for r in services.routes if r.digest_channel]


def post_digest(services: Services, *, day: date, late: bool = False) -> bool:
    """Queue `day`'s digest to every digest channel not yet given it; False if every one was.

    The claim (a digest_run row) and the outbox row are one transaction, so a replica that
    dies between them leaves nothing half done.
    """
    wanted = destinations(services)
    if not wanted:
        return False
    message = build_digest(services, day=day, late=late)
    now = services.clock.now()
    posted = []
    with services.db.unit_of_work() as uow:
        for platform, channel in wanted:
            destination = f"{platform}:{channel}"
            if uow.digest.runs.claim(day=day, destination=destination, at=now, late=late):
                # The figures and the chart go as two messages, each retried on its own: a chart
                # the platform refuses never holds back, or repeats, the figures.
                for part, payload in split_chart(message):
                    uow.outbox.enqueue(
                        key=f"digest{part}:{day.isoformat()}:{destination}",
                        platform=platform,
                        kind="channel",
                        address=channel,
                        payload=payload.to_json(),
                        at=now,
                    )
                posted.append(destination)
    if posted:
        log.info("digest for %s queued to %s%s", day, ", ".join(posted), " (late)" if late else "")
    return bool(posted)


def undelivered(services: Services, *, day: date) -> list[str]:
    """Each digest channel whose figures for `day` have not gone yet, with why ("#digest:
    channel_not_found"); empty once every one has."""
    keys = {f"digest:{day.isoformat()}:{p}:{c}": c for p, c in destinations(services)}
    with services.db.reading() as uow:
        rows = uow.outbox.by_key(list(keys))
    return [
        f"{keys[row.key]}: {row.last_error or 'waiting to send'}"
        for row in rows
        if row.state != "sent"
    ]


def split_chart(message: Message) -> list[tuple[str, Message]]:
    """("", the figures) and, when there is a chart, ("-chart", the chart with a caption)."""
    parts = [("", Message(text=message.text, review=message.review))]
    if message.attachments:
        caption = message.attachments[0].title
        parts.append(("-chart", Message(text=caption, attachments=message.attachments)))
    return parts


def digest_job(services: Services, *, send_late: bool = True) -> bool:
    """Post the latest due digest if no replica has. After downtime only the latest missed day
    is sent (marked late): older days live on in its 7-day trend; or, without `send_late`, none."""
    now = services.clock.now()
    day = latest_day(services, now)
    wanted = {f"{p}:{c}" for p, c in destinations(services)}
    if not wanted:
        return False
    with services.db.unit_of_work() as uow:
        if wanted <= uow.digest.runs.claimed(day):
            return False
    is_late = now - window_for(services, day).end > LATE_AFTER
    if is_late and not send_late:
        return False
    return post_digest(services, day=day, late=is_late)
