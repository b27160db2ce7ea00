"""GET and POST /concern/WARD/today: the family's daily view (Martha's Rule component 3), its
submission and the thank-you page. Nothing typed here is ever logged."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from handlers.web.forgery import Expired, Forged
from handlers.web.review import ReviewPages
from reviews import public
from reviews.checkins import record_checkin
from reviews.model import FormErrors
from reviews.public_checkin import PublicCheckinForm, validate_public_checkin
from reviews.wards import Ward
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)

FIELDS = tuple(PublicCheckinForm.__dataclass_fields__)


class TodayPages:
    """The daily view's pages; the request form's signer, refusals and problem pages."""

    def __init__(self, reviews: ReviewPages):
        self.reviews = reviews
        self.services, self.pages = reviews.services, reviews.pages

    def form(self, ward: Ward) -> Response:
        try:
            token = self.reviews.tokens().issue(ward.code, self.services.clock.now())
        except DatabaseUnavailable:
            return self.reviews.not_working(ward)
        return self._form(ward, token, {}, {})

    async def submit(self, request: Request, ward: Ward, base_url: str) -> Response:
        try:
            posted = await request.form()
        except Exception as error:  # noqa: BLE001 - a malformed body, whatever the parser says
            log.warning("daily view form unreadable (%s)", type(error).__name__)
            return self.reviews.refused(ward, 400, "We could not read that form")
        typed = {name: str(posted.get(name) or "") for name in FIELDS}
        token = str(posted.get("token") or "")
        address = request.client.host if request.client else "unknown"
        return await run_in_threadpool(self._receive, ward, typed, token, address, base_url)

    def _receive(
        self, ward: Ward, typed: dict[str, str], token: str, address: str, base_url: str
    ) -> Response:
        now = self.services.clock.now()
        try:
            tokens = self.reviews.tokens()
            key = tokens.submission(tokens.check(token, ward.code, now), typed)
        except DatabaseUnavailable:
            return self.reviews.not_sent(ward)
        except Expired:
            expired = {"send": "This form was open for over 2 hours, so it was not sent. "
                       "Check your answers and press Send again."}  # fmt: skip
            return self._form(ward, tokens.issue(ward.code, now), typed, expired, status=403)
        except Forged:
            return self.reviews.refused(ward, 403, "This form could not be sent")
        try:
            checkin, wish = validate_public_checkin(PublicCheckinForm(**typed), ward.name)
        except FormErrors as problems:
            return self._form(ward, token, typed, problems.errors, status=400)
        try:
            result = record_checkin(
                services=self.services,
                checkin=checkin,
                by=public.public_actor(key),
                source="web",
                submission_key=key,
                wish=wish,
                sender=public.address_key(tokens.key, address),
            )
        except public.TooMany:
            return self.reviews.refused(ward, 429, "Too many forms sent from this connection")
        except DatabaseUnavailable:
            return self.reviews.not_sent(ward)
        except Exception as error:  # noqa: BLE001 - never a thank-you for something not stored
            log.error("daily view on %s failed: %s", ward.code, type(error).__name__)
            return self.reviews.not_sent(ward, status=500)
        review = result.review
        return self.pages.render(
            "today_answer.html",
            ward=ward,
            answer=result.checkin.answer or "",
            reference=result.reference,
            callback=review.callback_number if review else "",
            status_link=f"{base_url}/concern/status/{review.status_token}" if review else "",
        )

    def _form(
        self,
        ward: Ward,
        token: str,
        values: dict[str, str],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        return self.pages.render(
            "today.html", status=status, ward=ward, token=token, values=values, errors=errors
        )
