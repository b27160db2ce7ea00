"""What this process knows about its own liveness: for /healthz, /metrics and the log.

A bot can be up and answering HTTP while escalation is dead: a sweep hung on a lock, an outbox
drain stuck, a revoked token that refuses every message. Each of those is a reason here, so
/healthz answers 503 naming it. Job times are the process's own (monotonic), not the clock
services use, so a frozen test clock cannot hide a hung job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)

STALE_AFTER = 10.0  # seconds without a completed sweep or drain before /healthz says 503
# How long what the database says of other processes' outages (PlatformOutage) is taken as it
# stands before it is read again: a public page reads it at most this often.
SHARED_FOR = 2.0


@dataclass
class _Job:
    since: float  # when it last completed (or began to be watched)
    running_since: float | None = None
    completed_at_wall: float | None = None
    duration: float | None = None
    reported: bool = False  # its staleness is logged once per episode
    failing: bool = False  # its failures likewise


@dataclass
class _Outage:
    kind: str  # "credentials" (503) or "unreachable" (a warning)
    reason: str
    retry_at: datetime | None = None
    # Unreachable as a message found it: only a message that goes ends it. The platform's
    # check can answer while its messages fail (a connector taking GETs and failing posts).
    by_delivery: bool = False
    delivery_failed: float = 0.0  # when (monotonic) a message last found it, if one did


class Health:
    """Thread-safe: the scheduler's jobs write, the HTTP server and the outbox read."""

    def __init__(
        self, *, stale_after: float = STALE_AFTER, monotonic: Callable[[], float] = time.monotonic
    ):
        self.stale_after = stale_after
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._watched: set[str] = set()  # jobs that must complete every `stale_after`
        self._outages: dict[str, _Outage] = {}
        self._notices: dict[str, str] = {}  # what is wrong in the bot but covered meanwhile
        self._refusing_channels: dict[str, str] = {}  # "platform channel" -> why it refuses
        self._described: dict[str, Callable[[], str]] = {}  # /healthz's other figures
        # Platforms a message sent by any process found unreachable, as last read from the
        # database (PlatformOutage), and when (monotonic): see elsewhere_due.
        self._elsewhere: dict[str, str] = {}
        self._elsewhere_read: float | None = None
        self.on_completed: list[Callable[[str, float], None]] = []  # (job, seconds): metrics
        # Other reasons for a 503, asked at each look (the sender process's hung drain).
        self.checks: list[Callable[[], str | None]] = []

    def watch(self, job: str) -> None:
        """From now on, `job` must complete every `stale_after` seconds."""
        with self._lock:
            self._watched.add(job)
            self._jobs.setdefault(job, _Job(since=self._monotonic()))

    def started(self, job: str) -> None:
        now = self._monotonic()
        with self._lock:
            self._jobs.setdefault(job, _Job(since=now)).running_since = now

    def completed(self, job: str) -> None:
        now = self._monotonic()
        with self._lock:
            state = self._jobs.setdefault(job, _Job(since=now))
            duration = now - state.running_since if state.running_since is not None else 0.0
            if state.reported or state.failing:
                log.warning("%s completed again after %.0f s", job, now - state.since)
            self._jobs[job] = _Job(since=now, completed_at_wall=time.time(), duration=duration)
        for listener in self.on_completed:
            listener(job, duration)

    def failed(self, job: str) -> bool:
        """`job` raised; True the first time since it last completed (log it then only)."""
        with self._lock:
            state = self._jobs.setdefault(job, _Job(since=self._monotonic()))
            first, state.failing, state.running_since = not state.failing, True, None
        return first

    def job_skipped(self, job: str) -> None:
        """The scheduler skipped a run because the last one is still going: log once if it
        has gone on past `stale_after` (a hung job), never per skipped tick."""
        with self._lock:
            state = self._jobs.get(job)
            if state is None or state.running_since is None or state.reported:
                return
            running = self._monotonic() - state.running_since
            if running <= self.stale_after:
                return
            state.reported = True
        log.error("%s has been running for %.0f s; later runs wait for it", job, running)

    def last_completed(self, job: str) -> float | None:
        """Unix time of the job's last completion in this process, if any."""
        with self._lock:
            state = self._jobs.get(job)
            return state.completed_at_wall if state else None

    def describe(self, name: str, figure: Callable[[], str]) -> None:
        """From now on /healthz's body gives `name`: `figure()` (the sender process's state)."""
        with self._lock:
            self._described[name] = figure

    def described(self) -> dict[str, str]:
        with self._lock:
            figures = dict(self._described)
        return {name: figure() for name, figure in sorted(figures.items())}

    def notice(self, key: str, warning: str | None) -> None:
        """Say `warning` among /healthz's warnings until it is set again, or None to clear it."""
        with self._lock:
            if warning is None:
                self._notices.pop(key, None)
            else:
                self._notices[key] = warning

    def channel(self, where: str, refused: str | None) -> bool:
        """Record whether the channel `where` ("slack channel C0123") takes the bot's messages:
        `refused` says why not, None that it does. True when this changes what is known."""
        with self._lock:
            before = self._refusing_channels.get(where)
            if refused is None:
                self._refusing_channels.pop(where, None)
            else:
                self._refusing_channels[where] = refused
        return before != refused

    def credentials_refused(self, platform: str, reason: str, *, retry_at: datetime) -> bool:
        """Record that `platform` refuses our credentials; True when this begins an outage."""
        with self._lock:
            began = self._outages.get(platform, _Outage("", "")).kind != "credentials"
            self._outages[platform] = _Outage("credentials", reason, retry_at)
        return began

    def unreachable(self, platform: str, reason: str, *, by_delivery: bool = False) -> bool:
        """Record that `platform` cannot be reached (or answers 5xx), as its check found, or
        with `by_delivery` as a message sent to it found; True when this begins an outage."""
        with self._lock:
            current = self._outages.get(platform)
            if current is not None and current.kind == "credentials":
                return False  # refused credentials is the worse news: keep saying that
            failed = self._monotonic() if by_delivery else current.delivery_failed if current else 0
            by_delivery = by_delivery or (current is not None and current.by_delivery)
            self._outages[platform] = _Outage(
                "unreachable", reason, by_delivery=by_delivery, delivery_failed=failed
            )
            return current is None

    def platform_ok(self, platform: str) -> _Outage | None:
        """Record that a message went to `platform`; the outage this ends, if one (an outage
        read from the database is over too: the caller clears it there)."""
        with self._lock:
            self._elsewhere.pop(platform, None)
            return self._outages.pop(platform, None)

    def elsewhere_due(self) -> float | None:
        """Whether what the database says of outages is to be read again (elsewhere): never
        read, or read more than SHARED_FOR seconds ago. If so, now (monotonic), for
        `elsewhere`'s `read_at`."""
        now = self._monotonic()
        with self._lock:
            read = self._elsewhere_read
        return now if read is None or now - read > SHARED_FOR else None

    def elsewhere(self, unreachable: dict[str, str], *, read_at: float) -> list[str]:
        """What the database says, as read from `read_at` (elsewhere_due's): each platform a
        message (sent by any process) found unreachable, none having gone since, and why. The
        platforms whose outage a message sent here found it ends (a message has gone since,
        sent by another process): those this process had recorded before `read_at`, and so
        in the database before that (outbox._unreachable writes it there first)."""
        with self._lock:
            self._elsewhere = dict(unreachable)
            self._elsewhere_read = read_at
            ended = [
                platform
                for platform, outage in self._outages.items()
                if outage.by_delivery
                and outage.delivery_failed < read_at
                and platform not in unreachable
            ]
            for platform in ended:
                del self._outages[platform]
        return ended

    def unreachable_elsewhere(self, platform: str) -> bool:
        """Whether the database said, when last read, that messages to `platform` fail."""
        with self._lock:
            return platform in self._elsewhere

    def platform_answered(self, platform: str) -> _Outage | None:
        """Record that `platform`'s check reached it and it took the bot's credentials; the
        outage this ends, if one. Not one a message found: only a message going ends that."""
        with self._lock:
            current = self._outages.get(platform)
            if current is None or current.by_delivery:
                return None
            return self._outages.pop(platform)

    def may_send(self, platform: str, now: datetime) -> bool:
        """False while `platform` refuses our credentials and its next try is not yet due."""
        with self._lock:
            outage = self._outages.get(platform)
        return outage is None or outage.retry_at is None or outage.retry_at <= now

    def refusing(self, platform: str) -> bool:
        """True while `platform` is known to refuse our credentials."""
        with self._lock:
            outage = self._outages.get(platform)
        return outage is not None and outage.kind == "credentials"

    def all_down(self, platforms: Iterable[str]) -> bool:
        """True when each of `platforms` refuses our credentials or cannot be reached, as far
        as this process has seen or the database said when last read (a message another
        process sent failed): what is queued for them waits (a public page asks the person to
        phone as well)."""
        wanted = set(platforms)
        with self._lock:
            return bool(wanted) and wanted <= self._outages.keys() | self._elsewhere.keys()

    def problems(self) -> list[str]:
        """Every reason this process is not doing its work (each one makes /healthz 503)."""
        with self._lock:
            reasons = [
                f"{name} has not completed for {self._age(state):.0f} s"
                + (" (still running)" if state.running_since is not None else "")
                for name, state in sorted(self._jobs.items())
                if name in self._watched and self._age(state) > self.stale_after
            ]
            reasons += [
                f"{platform} refuses the bot's credentials ({outage.reason})"
                for platform, outage in sorted(self._outages.items())
                if outage.kind == "credentials"
            ]
            reasons += [
                f"the outreach {where} does not take the bot's messages ({why}): its cards and "
                "alerts are not being seen"
                for where, why in sorted(self._refusing_channels.items())
            ]
            checks = list(self.checks)
        return reasons + [reason for check in checks if (reason := check())]

    def warnings(self) -> list[str]:
        """What is wrong and will mend itself (a platform unreachable), or is covered meanwhile
        (the sender process restarting: the bot sends)."""
        with self._lock:
            return [
                f"{platform} cannot be reached ({outage.reason}); messages wait and are retried"
                for platform, outage in sorted(self._outages.items())
                if outage.kind == "unreachable"
            ] + [warning for _, warning in sorted(self._notices.items())]

    def warnings_elsewhere(self, unreachable: Mapping[str, str]) -> list[str]:
        """What the database says (PlatformOutage, just read) of platforms a message another
        process sent found unreachable, where this process has not found so itself: the
        sender process sends, but a load balancer asks the bot's /healthz."""
        with self._lock:
            known = set(self._outages)
        return [
            f"{platform} cannot be reached, as a message another process sent found ({reason}); "
            "messages wait and are retried"
            for platform, reason in sorted(unreachable.items())
            if platform not in known
        ]

    def _age(self, state: _Job) -> float:
        return self._monotonic() - state.since
