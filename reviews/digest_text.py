"""The digest as a manager reads it: plain lines, each figure beside its 7-day trend.

Only references, wards, urgencies and counts: never an NHS number, a call-back number or what
the caller said.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

from reviews.digest_figures import Digest, Figures
from reviews.model import Caller, ConcernKind, Outcome, format_reference

TREND_DAYS = 7
URGENCY_ORDER = {"emergency": 0, "urgent": 1, "standard": 2}


def render(digest: Digest, tz: ZoneInfo, digest_time: time, *, late: bool = False) -> str:
    """The digest's text. `late` adds a line saying it missed DIGEST_TIME."""
    now, before = digest.figures, digest.before
    start = now.window.start.astimezone(tz)
    end = now.window.end.astimezone(tz)
    hours = f"{now.window.hours:g} hours"
    lines = [
        f"Rapid review digest for {end:%a %d %b %Y}: the {hours} from "
        f"{start:%H:%M %a %d %b} to {end:%H:%M %a %d %b}",
    ]
    if not digest.complete:
        lines = [
            f"Rapid review digest so far: from {start:%H:%M %a %d %b} to now, "
            f"{end:%H:%M %a %d %b} (the day's digest covers up to {digest_time:%H:%M})",
        ]
    if late:
        lines.append(f"Sent late: the bot was not running at {digest_time:%H:%M}.")
    lines += [
        "",
        *_requests(now, before),
        "",
        *_timing(now, before),
        "",
        *_outcomes(now),
        "",
        *_struggles(now, before),
        "",
        *_checkins(digest),
        "",
        *_still_open(digest, tz),
    ]
    return "\n".join(lines)


def _requests(now: Figures, before: Figures) -> list[str]:
    return [
        f"Requests raised: {now.raised} ({_per_day(before.raised)} a day in the 7 days before)",
        "  By who: " + _counts(now.by_caller, before.by_caller, {c.value: c.label for c in Caller}),
        "  Concern: "
        + _counts(now.by_concern, before.by_concern, {k.value: k.label for k in ConcernKind}),
        "  Wards: "
        + (
            ", ".join(
                f"{ward} {n}"
                for ward, n in sorted(now.by_ward.items(), key=lambda i: (-i[1], i[0]))
            )
            or "none"
        ),
    ]


def _timing(now: Figures, before: Figures) -> list[str]:
    lines = []
    for measure, name, done_text, target_text in (
        (
            "acknowledge",
            "Time to acknowledge",
            "acknowledged",
            "target: before the first escalation, ",
        ),
        ("attend", "Time to attend", "attended", "target: attending within "),
    ):
        lines.append(
            f"{name}, from raising: {_spread(now, measure, '*')} "
            f"(7 days before: {_spread(before, measure, '*')})"
        )
        for timing in sorted(
            now.timings, key=lambda t: (URGENCY_ORDER.get(t.urgency, 9), t.urgency)
        ):
            if measure == "acknowledge":
                done, target, missed = (
                    timing.acknowledged,
                    timing.acknowledge_target,
                    timing.acknowledge_missed,
                )
                target_line = f"{target_text}{_duration(target)}"
            else:
                done, target, missed = timing.attended, timing.attend_target, timing.attend_missed
                target_line = f"{target_text}{_duration(target)} of acknowledging"
            lines.append(
                f"  {timing.urgency}: {done} of {timing.raised} {done_text}, "
                f"{_spread(now, measure, timing.urgency)}; {target_line}, missed by {missed}"
            )
    return lines


def _outcomes(now: Figures) -> list[str]:
    totals: dict[str, int] = {}
    transfers: dict[str, int] = {}
    for (status, where_to), n in now.outcomes.items():
        totals[status] = totals.get(status, 0) + n
        if status == Outcome.TRANSFER:
            transfers[where_to or "not said"] = n
    parts = []
    for outcome in Outcome:
        part = f"{outcome.label} {totals.get(outcome.value, 0)}"
        if outcome is Outcome.TRANSFER and transfers:
            part += " (" + ", ".join(f"{w} {n}" for w, n in sorted(transfers.items())) + ")"
        parts.append(part)
    parts += [f"Cancelled {totals.get('cancelled', 0)}", f"Still open {totals.get('open', 0)}"]
    return ["Outcomes of these requests: " + ", ".join(parts)]


def _struggles(now: Figures, before: Figures) -> list[str]:
    levels = sorted(set(now.escalations) | set(before.escalations))
    escalated = ", ".join(
        f"level {lv} {now.escalations.get(lv, 0)} ({_per_day(before.escalations.get(lv, 0))})"
        for lv in levels
        if lv > 0
    )
    return [
        "Where the system struggled (7-day daily average in brackets):",
        f"  Requests escalated past the bleep holder, by level: {escalated or 'none'}",
        f"  Cover gaps (a role with nobody on call): {now.cover_gaps} "
        f"({_per_day(before.cover_gaps)})",
        f"  Messages that failed delivery: {now.delivery_failures} "
        f"({_per_day(before.delivery_failures)})",
        f"  Messages held up over 2 minutes, then tried again: {now.delivery_delays} "
        f"({_per_day(before.delivery_delays)})",
        f"  Texts and pages to on-call staff: {now.texts_sent} sent "
        f"({_per_day(before.texts_sent)}), {now.texts_failed} failed "
        f"({_per_day(before.texts_failed)})",
    ]


def _checkins(digest: Digest) -> list[str]:
    """Martha's Rule component 3: each ward's daily check-ins and what they led to."""
    total = sum(ward.checkins for ward in digest.checkins)
    lines = [f"Daily check-ins (patients' and families' own view): {total}"]
    lines += [
        f"  {ward.ward}: {ward.checkins} check-in{'s' * (ward.checkins != 1)}, "
        f"{ward.worse} worse, {ward.reviews} rapid review{'s' * (ward.reviews != 1)} raised"
        for ward in digest.checkins
    ]
    lines.append("  Wards with none: " + (", ".join(digest.wards_without_checkins) or "none"))
    return lines


def _still_open(digest: Digest, tz: ZoneInfo) -> list[str]:
    end = digest.figures.window.end
    lines = [
        f"Still open at {end.astimezone(tz):%H:%M}: {digest.open_total}"
        + (", oldest first:" if digest.open_total else "")
    ]
    for request in digest.open_oldest:
        age = _duration((end - request.raised_at).total_seconds())
        lines.append(
            f"  {format_reference(request.review_id)} · {request.ward} · "
            f"{request.urgency} · {request.state} · open {age}"
        )
    if digest.open_total > len(digest.open_oldest):
        lines.append(f"  and {digest.open_total - len(digest.open_oldest)} more")
    return lines


def _counts(now: dict[str, int], before: dict[str, int], labels: dict[str, str]) -> str:
    return ", ".join(
        f"{label} {now.get(key, 0)} ({_per_day(before.get(key, 0))})"
        for key, label in labels.items()
    )


def _spread(figures: Figures, measure: str, group: str) -> str:
    spreads = figures.acknowledge if measure == "acknowledge" else figures.attend
    spread = spreads.get(group)
    if spread is None or spread.median is None or spread.p90 is None:
        return "none yet"
    return f"median {_duration(spread.median)}, 90th percentile {_duration(spread.p90)}"


def _per_day(total: int) -> str:
    return f"{total / TREND_DAYS:.1f}"


def _duration(seconds: float | None) -> str:
    """12 s, 4 min 30 s, 2 h 05 min: rounded to the second."""
    if seconds is None:
        return "no target"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60:02d} min"
