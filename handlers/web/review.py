"""GET and POST /concern/WARD/review: the request form, its submission and the answer page.

Nothing typed here is ever logged: log lines carry the reference, or an error's type only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from handlers.deadline import NotConfirmed, within_deadline
from handlers.web.forgery import Expired, Forged, FormTokens
from handlers.web.render import Pages
from reviews import public
from reviews.context import Services
from reviews.model import FormErrors
from reviews.outbox import unreachable_elsewhere
from reviews.public_form import PublicForm, readable_phone, validate_public
from reviews.wards import Ward
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


def delayed(services: Services) -> bool:
    """Whether no platform the outreach team is told on can be reached now (a revoked token,
    Slack down): a page that would say "the team has been told" asks the person to phone as
    well. A message another process sent (the sender process) counts as soon as the database
    says so, within SHARED_FOR seconds."""
    unreachable_elsewhere(services)
    return services.health.all_down(route.platform for route in services.routes)


def told_to_phone(ward: Ward) -> None:
    log.warning(
        "a request from the public page for %s is recorded while no chat platform can be "
        "reached: the page asked the person to phone as well",
        ward.code,
    )


def from_another_site(request: Request, public_url: str) -> bool:
    """Whether the browser says this form was posted by another site's page (cross-site request
    forgery). The form's token alone cannot tell: another site's server can load the form and
    hand its token to every visitor's browser, each posting from the visitor's own address.
    Sec-Fetch-Site, set by the browser itself, decides when it says; without it (an older
    browser; blanked, or a value we do not know) the Origin must be this site's (its Host, the
    X-Forwarded-Host of a proxy that gives the bot its own name in Host, or PUBLIC_URL's, each
    without a default port no browser puts in Origin); "null" (our pages' no-referrer policy
    makes a browser send it with our own forms) or none at all cannot tell, and is taken.
    Another site's page cannot add X-Forwarded-Host to a form."""
    fetched_from = (request.headers.get("sec-fetch-site") or "").strip().lower()
    if fetched_from in ("same-origin", "none"):
        return False
    if fetched_from in ("same-site", "cross-site"):
        return True
    # None, blank (a privacy extension or filtering proxy blanks it) or unknown: by Origin.
    origin = request.headers.get("origin", "").strip().lower()
    if origin in ("", "null"):
        return False
    named = [request.headers.get("host", ""), urlsplit(public_url).netloc]
    for forwarded in request.headers.getlist("x-forwarded-host"):
        named += forwarded.split(",")
    ours = {_site(name) for name in named} - {""}
    return _site(urlsplit(origin).netloc) not in ours


def _site(netloc: str) -> str:
    """A host as Origin gives it: lower case, without the default port ("example:443")."""
    host = netloc.strip().lower()
    for default in (":443", ":80"):
        host = host.removesuffix(default)
    return host


FIELDS = tuple(PublicForm.__dataclass_fields__)


class ReviewPages:
    """The request form's pages for one bot: its services, templates and signing key. The
    daily view's pages (handlers/web/today.py) are these with another form and `_accept`."""

    template = "review.html"
    fields = FIELDS

    def counted_as(self, typed: dict[str, str]) -> str:
        """Whose hourly allowance a submission uses (public.address_key)."""
        return "request"

    def __init__(self, services: Services, pages: Pages):
        self.services, self.pages = services, pages
        self._tokens: FormTokens | None = None

    def tokens(self) -> FormTokens:
        """The signer; its key comes from the database once. DatabaseUnavailable if it cannot."""
        if self._tokens is None:
            self._tokens = FormTokens(public.site_key(self.services))
        return self._tokens

    def form(self, ward: Ward) -> Response:
        try:
            token = self.tokens().issue(ward.code, self.services.clock.now())
        except DatabaseUnavailable:
            return self.not_working(ward)
        return self._form(ward, token, {}, {})

    async def submit(self, request: Request, ward: Ward, base_url: str) -> Response:
        if from_another_site(request, self.pages.site.public_url):
            log.warning("public form on %s refused: sent from another site", ward.code)
            return self.refused(ward, 403, "This form could not be sent")
        try:
            posted = await request.form()
        except Exception as error:  # noqa: BLE001 - a malformed body, whatever the parser says
            log.warning("public form unreadable (%s)", type(error).__name__)
            return self.refused(ward, 400, "We could not read that form")
        if any(not isinstance(value, str) for _, value in posted.multi_items()):
            # A file: our forms never send one, so the body was made by hand.
            await posted.close()
            log.warning("public form unreadable (a file among its fields)")
            return self.refused(ward, 400, "We could not read that form")
        typed = {name: str(posted.get(name) or "") for name in self.fields}
        token = str(posted.get("token") or "")
        address = request.client.host if request.client else "unknown"
        return await run_in_threadpool(self._receive, ward, typed, token, address, base_url)

    def _receive(
        self, ward: Ward, typed: dict[str, str], token: str, address: str, base_url: str
    ) -> Response:
        now = self.services.clock.now()
        try:
            tokens = self.tokens()
            key = tokens.submission(tokens.check(token, ward.code, now), typed)
        except DatabaseUnavailable:
            return self.not_sent(ward)
        except Expired:
            expired = {
                "send": "This form was open for over 2 hours, so it was not sent. "
                "Check your answers and press Send again."
            }
            return self._form(ward, tokens.issue(ward.code, now), typed, expired, status=403)
        except Forged:
            return self.refused(ward, 403, "This form could not be sent")
        sender = public.address_key(tokens.key, address, self.counted_as(typed))
        return self._accept(ward, typed, token, key, sender, base_url)

    def _accept(
        self, ward: Ward, typed: dict[str, str], token: str, key: str, sender: str, base_url: str
    ) -> Response:
        """Record a form whose token was good: its answer page, or why not."""
        try:
            request = validate_public(PublicForm(**typed), ward.name)
        except FormErrors as problems:
            return self._form(ward, token, typed, problems.errors, status=400)
        result = self._store(
            ward,
            lambda: public.raise_from_public_page(
                services=self.services, request=request, submission_key=key, sender=sender
            ),
            what="request",
            too_many="Too many requests from this connection",
        )
        if isinstance(result, Response):
            return result
        review = result.review
        late = delayed(self.services)
        if late:
            told_to_phone(ward)
        return self.pages.render(
            "answer.html",
            ward=ward,
            reference=result.reference,
            callback=readable_phone(review.callback_number or ""),
            status_link=f"{base_url}/concern/status/{review.status_token}",
            delayed=late,
        )

    def _store(
        self, ward: Ward, store: Callable[[], T], *, what: str, too_many: str
    ) -> T | Response:
        """`store()`'s result, stored within DEADLINE, or the page that tells the person what
        became of it (never a success page for something not stored); `what` names it in the
        log ("request", "daily view"), never what was typed."""
        try:
            return within_deadline(store, f"{what} from the public page")
        except NotConfirmed:
            return self.not_confirmed(ward)
        except public.TooMany:
            return self.refused(ward, 429, too_many)
        except DatabaseUnavailable:
            return self.not_sent(ward)
        except Exception as error:  # noqa: BLE001 - never a success page for something not stored
            log.error("public %s on %s failed: %s", what, ward.code, type(error).__name__)
            return self.not_sent(ward, status=500)

    def _form(
        self,
        ward: Ward,
        token: str,
        values: dict[str, str],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        return self.pages.render(
            self.template, status=status, ward=ward, token=token, values=values, errors=errors
        )

    def refused(self, ward: Ward | None, status: int, title: str) -> Response:
        lines = ["Nothing was sent. If you are worried about someone now, do not wait:"]
        return self.pages.render(
            "problem.html", status=status, ward=ward, title=title, lines=lines, not_sent=True
        )

    def not_sent(self, ward: Ward, status: int = 503) -> Response:
        return self._call_now(
            ward,
            "Your request was NOT sent",
            "Something went wrong on our side, so the outreach team has NOT been told.",
            status=status,
            not_sent=True,
        )

    def not_confirmed(self, ward: Ward) -> Response:
        """The database did not confirm the request within DEADLINE: it may yet be recorded
        (and the team told), or may not; the person must not wait to find out."""
        return self._call_now(
            ward,
            "We could not confirm that your request was sent",
            "Our system is slow to answer just now, so we cannot tell whether the outreach "
            "team has been told.",
        )

    def not_working(self, ward: Ward) -> Response:
        return self._call_now(
            ward, "This form is not working", "This form is not working just now."
        )

    def _call_now(
        self, ward: Ward, title: str, line: str, *, status: int = 503, not_sent: bool = False
    ) -> Response:
        """A problem page that asks the person to call now, on the ward's phone line."""
        return self.pages.render(
            "problem.html",
            status=status,
            ward=ward,
            title=title,
            call_now=True,
            lines=[line],
            not_sent=not_sent,
        )
