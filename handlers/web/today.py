"""GET and POST /concern/WARD/today: the family's daily view (Martha's Rule component 3), its
submission and the thank-you page: the request form's pages with another form and answer.
Nothing typed here is ever logged."""

from __future__ import annotations

import logging

from starlette.responses import Response

from handlers.web.review import ReviewPages, delayed, told_to_phone
from reviews import public
from reviews.checkins import record_checkin
from reviews.model import FormErrors
from reviews.public_checkin import PublicCheckinForm, validate_public_checkin
from reviews.public_form import readable_phone
from reviews.wards import Ward

log = logging.getLogger(__name__)


class TodayPages(ReviewPages):
    template = "today.html"
    fields = tuple(PublicCheckinForm.__dataclass_fields__)

    def counted_as(self, typed: dict[str, str]) -> str:
        # A daily view that asks for a review is a request: routine views never use up its
        # allowance, nor can they block it.
        return "request" if typed.get("wants_review") == "yes" else "daily view"

    def _accept(
        self, ward: Ward, typed: dict[str, str], token: str, key: str, sender: str, base_url: str
    ) -> Response:
        try:
            checkin, wish = validate_public_checkin(PublicCheckinForm(**typed), ward.name)
        except FormErrors as problems:
            return self._form(ward, token, typed, problems.errors, status=400)
        result = self._store(
            ward,
            lambda: record_checkin(
                services=self.services,
                checkin=checkin,
                by=public.public_actor(key),
                source="web",
                submission_key=key,
                wish=wish,
                sender=sender,
            ),
            what="daily view",
            too_many="Too many forms sent from this connection",
        )
        if isinstance(result, Response):
            return result
        review = result.review
        late = review is not None and delayed(self.services)
        if late:
            told_to_phone(ward)
        return self.pages.render(
            "today_answer.html",
            ward=ward,
            answer=result.checkin.answer or "",
            reference=result.reference,
            callback=readable_phone(review.callback_number or "") if review else "",
            status_link=f"{base_url}/concern/status/{review.status_token}" if review else "",
            delayed=late,
        )
