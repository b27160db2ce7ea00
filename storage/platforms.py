"""The platforms a failed message found unreachable (PlatformOutage): shared by every process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from storage.tables import PlatformOutage
from storage.upsert import insert_for


class PlatformStore:
    def __init__(self, session: Session):
        self.session = session

    def unreachable(self, platform: str, reason: str, *, at: datetime) -> None:
        """Record that a message to `platform` failed as it cannot be reached: an outage since
        the first such failure, until a message goes. Two processes recording it at once both
        succeed."""
        values = {"reason": reason[:500], "last_failed_at": at}
        upsert = insert_for(self.session)(PlatformOutage).values(
            platform=platform, since=at, **values
        )
        self.session.execute(upsert.on_conflict_do_update(index_elements=["platform"], set_=values))

    def went(self, platform: str) -> None:
        """A message to `platform` went: whatever outage a message found there is over."""
        self.session.execute(delete(PlatformOutage).where(col(PlatformOutage.platform) == platform))

    def unreachable_now(self) -> dict[str, str]:
        """Each platform a message found unreachable, none having gone since: why."""
        query = select(PlatformOutage.platform, PlatformOutage.reason)
        return dict(self.session.exec(query).all())
