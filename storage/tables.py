"""The tables. Every time is a timezone-aware UTC value (sqlmodel's UTCDateTime).

Enumerations are stored as their string values, not native database enums, so a new outcome or
state is a code change and not a type migration.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel


class Review(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # A client-supplied key (e.g. the Slack view id) so a retried submission finds its review.
    submission_key: str | None = Field(default=None, unique=True, max_length=200)
    state: str = Field(max_length=20, index=True)
    caller: str = Field(max_length=20)
    concern_kind: str = Field(max_length=30)
    ward: str = Field(max_length=60)
    bed: str = Field(default="", max_length=20)
    nhs_number: str | None = Field(default=None, max_length=10)
    news2: int | None = None
    concern: str = Field(sa_column=Column(Text, nullable=False))
    callback_number: str | None = Field(default=None, max_length=20)
    source: str = Field(default="form", max_length=20)  # form, web, checkin
    # From the public page only; shown privately to whoever takes it, never on a card.
    caller_name: str | None = Field(default=None, max_length=200)
    patient_name: str | None = Field(default=None, max_length=200)
    relationship: str | None = Field(default=None, max_length=100)
    spoken_to_ward: bool | None = None
    # The unguessable part of the public status link; NULL for staff requests.
    status_token: str | None = Field(default=None, unique=True, max_length=64)
    urgency: str = Field(max_length=40)
    policy: str = Field(sa_column=Column(Text, nullable=False))  # JSON snapshot of the ladder
    raised_platform: str = Field(max_length=20)
    raised_by: str = Field(max_length=100)  # platform user id
    raised_by_name: str = Field(default="", max_length=200)
    raised_at: datetime = Field(index=True)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=200)
    acknowledged_platform: str | None = Field(default=None, max_length=20)
    acknowledged_user: str | None = Field(default=None, max_length=100)
    attending_at: datetime | None = None
    attending_by: str | None = Field(default=None, max_length=200)
    closed_at: datetime | None = Field(default=None, index=True)  # digest: open at a moment
    closed_by: str | None = Field(default=None, max_length=200)
    closed_platform: str | None = Field(default=None, max_length=20)
    closed_user: str | None = Field(default=None, max_length=100)
    outcome: str | None = Field(default=None, max_length=30)
    outcome_detail: str | None = Field(default=None, sa_column=Column(Text))
    cancelled_at: datetime | None = Field(default=None, index=True)
    cancelled_by: str | None = Field(default=None, max_length=200)
    cancelled_platform: str | None = Field(default=None, max_length=20)
    cancelled_user: str | None = Field(default=None, max_length=100)
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    # The escalation ladder: the next level to fire, how often the last one has repeated,
    # and when the next one is due. NULL once acknowledged or finished.
    escalation_level: int = 0
    escalation_repeat: int = 0
    next_escalation_at: datetime | None = Field(default=None, index=True)
    attend_reminders: int = 0
    next_attend_reminder_at: datetime | None = Field(default=None, index=True)
    # When retention erased its identifiers and free text (RETENTION_DAYS after it closed).
    erased_at: datetime | None = None


class ReviewEvent(SQLModel, table=True):
    """Append-only audit: who did what to which review, when, from which platform."""

    __tablename__ = "review_event"
    __table_args__ = (Index("ix_review_event_kind_at", "kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: int | None = Field(default=None, foreign_key="review.id", index=True)
    at: datetime
    kind: str = Field(max_length=40)
    actor: str = Field(default="system", max_length=200)  # the name shown to people
    actor_id: str | None = Field(default=None, max_length=200)  # stable platform user id
    platform: str = Field(default="system", max_length=20)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON


class Card(SQLModel, table=True):
    """Where a review's card was posted on each platform, so it can be updated in place."""

    __table_args__ = (UniqueConstraint("review_id", "platform", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    platform: str = Field(max_length=20)
    channel: str = Field(max_length=200)
    message_id: str = Field(max_length=200)


class ChannelCheck(SQLModel, table=True):
    """An outreach channel that refused the bot's messages for good, whose platform, asked
    since, said the bot may post there again (invited back): read by every replica's check,
    so /healthz clears on each of them, not only on the replica that asked."""

    __tablename__ = "channel_check"
    __table_args__ = (UniqueConstraint("platform", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    channel: str = Field(max_length=200)
    # The channel's latest failed message (an outbox id) when the platform said so: that
    # failure is answered; one after it is news again.
    failure_id: int
    verified_at: datetime


class Outbox(SQLModel, table=True):
    """A message waiting to go out, or the record of one that went (or failed)."""

    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # UNIQUE: e.g. "esc:42:2:0:staff7:slack". A second writer of the same message is refused.
    key: str = Field(max_length=300, unique=True)
    review_id: int | None = Field(default=None, foreign_key="review.id", index=True)
    platform: str = Field(max_length=20)
    kind: str = Field(max_length=20)  # card, card_update, thread, direct, channel
    address: str = Field(max_length=200)  # channel id, user id, conversation id
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON neutral message
    state: str = Field(default="pending", max_length=20)  # pending, sending, sent, failed
    attempts: int = 0
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    message_id: str | None = Field(default=None, max_length=200)
    # The last attempt may have reached the platform unseen: its answer was lost (a network
    # failure, a 5xx) or its drainer died mid-send. The next attempt first looks whether it
    # arrived (Slack: the message's metadata), so a lost answer does not post it twice.
    maybe_sent: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # The drainer holding a claimed row (an opaque token, new for each process): a sender
    # process its bot saw die has its rows handed back at once, not after their lease.
    claimed_by: str | None = Field(default=None, max_length=40)
    # An escalation direct message: when to look again at whether it needs a text or page
    # (not sent in time, failed, or sent but not acknowledged). NULL once settled.
    follow_up_at: datetime | None = Field(default=None, index=True)


class PlatformOutage(SQLModel, table=True):
    """A platform a message found it cannot reach (a 5xx, a network failure), until a message
    to it goes: written by the process that sent it, read by every process (a sender process's
    failure must reach the bot's public pages, and every replica's). One row a platform."""

    __tablename__ = "platform_outage"

    platform: str = Field(primary_key=True, max_length=20)
    reason: str = Field(max_length=500)
    since: datetime  # the first failure of this outage
    last_failed_at: datetime


class Staff(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254, unique=True)
    slack_user_id: str | None = Field(default=None, max_length=50, unique=True)
    teams_user_id: str | None = Field(default=None, max_length=200, unique=True)
    # JSON: the Bot Framework conversation reference for proactive direct messages.
    teams_conversation: str | None = Field(default=None, sa_column=Column(Text))
    mobile: str | None = Field(default=None, max_length=20)  # +447700900123
    pager: str | None = Field(default=None, max_length=50)  # the paging gateway's id


class Shift(SQLModel, table=True):
    """A rota shift. Superseded shifts are kept as history of who held the bleep when."""

    __table_args__ = (Index("ix_shift_role_span", "role", "start", "end"),)

    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(max_length=60)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    start: datetime
    end: datetime
    source: str = Field(max_length=300)
    imported_at: datetime
    superseded_at: datetime | None = None


class Cover(SQLModel, table=True):
    """An override: someone covering a role for a period; wins over the shift."""

    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(max_length=60, index=True)
    staff_id: int = Field(foreign_key="staff.id")
    start: datetime
    end: datetime
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime
    cancelled_at: datetime | None = None


class DigestRun(SQLModel, table=True):
    """One row per digest posted: UNIQUE (day, destination) lets exactly one replica post."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("day", "destination"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    destination: str = Field(max_length=200)
    claimed_at: datetime
    late: bool = False


class Checkin(SQLModel, table=True):
    """A daily check-in: how a patient (or their family) says they are, in their own words."""

    __table_args__ = (Index("ix_checkin_ward_at", "ward", "recorded_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # A client-supplied key (a form's id and count) so a retried submission finds its check-in.
    submission_key: str | None = Field(default=None, unique=True, max_length=200)
    ward: str = Field(max_length=60)
    bed: str = Field(default="", max_length=20)
    respondent: str = Field(max_length=20)  # patient, family, not_asked
    not_asked_reason: str | None = Field(default=None, max_length=30)
    answer: str | None = Field(default=None, max_length=10)  # better, same, worse
    worries: str | None = Field(default=None, sa_column=Column(Text))
    wants_review: bool = False
    review_id: int | None = Field(default=None, foreign_key="review.id")
    source: str = Field(max_length=20)  # slack, teams, shell, web
    recorded_by: str = Field(max_length=100)  # platform user id ("" on the public page)
    recorded_by_name: str = Field(default="", max_length=200)
    recorded_at: datetime = Field(index=True)
    erased_at: datetime | None = None


class WebSubmission(SQLModel, table=True):
    """A request recorded from the public pages, by a keyed hash of the sender's address: the
    hourly limit per address is counted here so every replica agrees."""

    __tablename__ = "web_submission"
    __table_args__ = (Index("ix_web_submission_address_at", "address", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=64)  # HMAC-SHA256 hex of the IP address, never the address
    at: datetime


class AppSecret(SQLModel, table=True):
    """Keys made once at random and shared by every replica through the database (the public
    pages' anti-forgery signature)."""

    __tablename__ = "app_secret"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=200)
