"""The export's SQL: the month's requests row by row, and the summary a trust returns nationally.

Unlike the digest, the export reads what is known now: it is run after the month has ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlmodel import col

from storage.digest import DigestStore, Spread, raised_in
from storage.tables import Review


class ExportStore(DigestStore):
    def month_rows(self, start: datetime, end: datetime, *, with_identifiers: bool) -> Any:
        """The requests raised in [start, end), oldest first, as rows for the export."""
        columns: list[Any] = [
            col(Review.id),
            col(Review.raised_at),
            col(Review.ward),
            col(Review.urgency),
            Review.news2,
            col(Review.caller),
            col(Review.concern_kind),
            col(Review.state),
            col(Review.acknowledged_at),
            col(Review.attending_at),
            col(Review.closed_at),
            col(Review.cancelled_at),
            col(Review.outcome),
            col(Review.outcome_detail),
            self._seconds(col(Review.raised_at), col(Review.acknowledged_at)).label(
                "to_acknowledge"
            ),
            self._seconds(col(Review.raised_at), col(Review.attending_at)).label("to_attend"),
        ]
        if with_identifiers:
            columns += [col(Review.nhs_number), col(Review.callback_number)]
        query = (
            select(*columns)
            .where(raised_in(start, end))
            .order_by(col(Review.raised_at), col(Review.id))
        )
        return self.session.execute(query.execution_options(yield_per=1000))

    def month_summary(self, start: datetime, end: datetime) -> dict[tuple[str, str, str], int]:
        """(concern kind, outcome or state, transfer destination) -> count, for the return."""
        status = func.coalesce(col(Review.outcome), col(Review.state))
        where_to = case(
            (col(Review.outcome) == "transfer", func.coalesce(col(Review.outcome_detail), "")),
            else_="",
        )
        inner = (
            select(
                col(Review.concern_kind).label("kind"),
                status.label("status"),
                where_to.label("where_to"),
            )
            .where(raised_in(start, end))
            .subquery()
        )
        query = select(inner.c.kind, inner.c.status, inner.c.where_to, func.count()).group_by(
            inner.c.kind, inner.c.status, inner.c.where_to
        )
        return {(k, s, w): n for k, s, w, n in self.session.execute(query).all()}

    def month_spreads(self, start: datetime, end: datetime) -> dict[str, Spread]:
        """Time to acknowledge and to attend over the whole month, as known now."""
        return {
            measure: self._spreads(
                literal("*"),
                self._seconds(col(Review.raised_at), moment),
                [raised_in(start, end), col(moment).is_not(None)],
            ).get("*", Spread(0, None, None))
            for measure, moment in (
                ("acknowledge", col(Review.acknowledged_at)),
                ("attend", col(Review.attending_at)),
            )
        }
