"""The public pages for patients and families (CONTRACT.md "Patients and families ask
themselves"): Starlette routes, Jinja2 templates, one stylesheet of our own. No JavaScript."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from handlers.limits import BodyLimit
from handlers.one_at_a_time import Waited, in_time
from handlers.web.render import SECURITY_HEADERS, STYLESHEET, Pages, PublicSite
from handlers.web.review import ReviewPages, delayed
from handlers.web.today import TodayPages
from reviews.context import Services
from reviews.public import public_status
from reviews.wards import Ward
from settings import Settings
from storage.database import DatabaseUnavailable

# The longest form a person may send, in any script: its typed fields at their limits in
# characters (the concern, or the daily view's worries, 2,000; your_name and patient_name 100
# each; relationship 60; bed 20) at 12 bytes a character (4 bytes of UTF-8, each
# percent-encoded as 3), plus 1 KB for the rest (field names, choices, the phone number, the
# anti-forgery token). The forms' own checks still count characters.
MAX_BODY = (2000 + 100 + 100 + 60 + 20) * 12 + 1024
# Seconds the status page waits for the database before saying it cannot be shown just now.
STATUS_WAIT = 5.0
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def public_site(settings: Settings) -> PublicSite:
    return PublicSite(phone=settings.concern_phone, public_url=settings.public_url)


def web_routes(services: Services, settings: Settings) -> list[BaseRoute]:
    """GET /concern and each ward's pages. Other helpers' pages (the daily view) mount beside."""
    pages = Pages(public_site(settings))

    async def choose_ward(_request: Request) -> Response:
        return pages.render("choose_ward.html", wards=list(services.wards))

    async def ward_page(request: Request) -> Response:
        ward = find_ward(services, request)
        if ward is None:
            return unknown_ward(pages)
        return pages.render("ward.html", ward=ward)

    def form_page(forms: ReviewPages) -> Callable[[Request], Awaitable[Response]]:
        """A ward's form: GET shows it, POST sends it."""

        async def page(request: Request) -> Response:
            ward = find_ward(services, request)
            if ward is None:
                return unknown_ward(pages)
            if request.method == "GET":
                return await run_in_threadpool(forms.form, ward)
            base_url = settings.public_url or str(request.base_url).rstrip("/")
            return await forms.submit(request, ward, base_url)

        return page

    async def status_page(request: Request) -> Response:
        token = request.path_params["token"]
        return await run_in_threadpool(status_in_time, services, pages, token)

    async def stylesheet(_request: Request) -> Response:
        return pages.css()

    return [
        Route(STYLESHEET, stylesheet, methods=["GET"]),
        Route("/concern", choose_ward, methods=["GET"]),
        Route("/concern/status/{token}", status_page, methods=["GET"]),
        Route("/concern/{ward}", ward_page, methods=["GET"]),
        Route(
            "/concern/{ward}/review",
            form_page(ReviewPages(services, pages)),
            methods=["GET", "POST"],
        ),
        Route(
            "/concern/{ward}/today", form_page(TodayPages(services, pages)), methods=["GET", "POST"]
        ),
    ]


def status_in_time(services: Services, pages: Pages, token: str) -> Response:
    """The status page, or, when the database has not answered within STATUS_WAIT (it hangs),
    the page that says it cannot be shown just now: a family refreshing it then holds none of
    the server's threads for as long as the database hangs."""
    try:
        return in_time(lambda: show_status(services, pages, token), STATUS_WAIT, name="status")
    except Waited:
        return cannot_show(pages)


def cannot_show(pages: Pages) -> Response:
    lines = ["We cannot show this page just now. Please try again in a few minutes."]
    return pages.render(
        "problem.html",
        status=503,
        title="Sorry, there is a problem",
        lines=lines,
        not_sent=False,
    )


def show_status(services: Services, pages: Pages, token: str) -> Response:
    """The status page, or 404 (with the phone line) for a link that is wrong or has expired."""
    try:
        status = public_status(services=services, token=token) if TOKEN.match(token) else None
    except DatabaseUnavailable:
        return cannot_show(pages)
    if status is None:
        lines = [
            "This link is wrong, or it has stopped working. Links stop working 7 days after "
            "the review is finished."
        ]
        return pages.render(
            "problem.html",
            status=404,
            title="We cannot show this request",
            lines=lines,
            not_sent=False,
        )
    seen = status.steps[1].at is not None  # acknowledged: the team has it
    # The ward's own line, though the page names no ward (it shows only what happened, when).
    ward = next((w for w in services.wards if w.name == status.ward), None)
    return pages.render(
        "status.html",
        phone=pages.site.phone_for(ward),
        progress=status,
        delayed=status.open and not seen and delayed(services),
    )


def find_ward(services: Services, request: Request) -> Ward | None:
    """The ward named in the path; None when the wards file has no such ward."""
    return services.wards.by_code(str(request.path_params.get("ward", "")))


def unknown_ward(pages: Pages) -> Response:
    return pages.render(
        "problem.html",
        status=404,
        title="We cannot find that ward",
        lines=["Check the web address on the poster, or choose the ward from the list."],
        not_sent=False,
    )


def error_pages(settings: Settings) -> dict[int, Callable[[Request, HTTPException], Any]]:
    """404 and 405 under /concern as a public page (the phone line, the security headers),
    since a mistyped poster address or a stale form may be someone asking for help; anywhere
    else Starlette's own plain answer."""
    pages = Pages(public_site(settings))

    async def page(request: Request, error: HTTPException) -> Response:
        if not request.url.path.startswith("/concern"):
            return PlainTextResponse(error.detail, error.status_code, headers=error.headers)
        answer = pages.render(
            "problem.html",
            status=error.status_code,
            title="We cannot find that page",
            lines=[
                "Check the web address on the poster, or choose the ward from the list.",
                "Nothing was sent. If you are worried about someone now, do not wait:",
            ],
            not_sent=request.method not in ("GET", "HEAD"),
        )
        answer.headers.update(error.headers or {})
        return answer

    return {404: page, 405: page}


def body_limit(settings: Settings) -> BodyLimit:
    """/concern's MAX_BODY limit, refused with a page that gives the phone line."""
    pages = Pages(public_site(settings))
    refusal = pages.render(
        "problem.html",
        status=413,
        title="That was too long to send",
        lines=["Please go back and make what you wrote shorter, then try again."],
        not_sent=True,
    )
    return BodyLimit(
        "/concern",
        MAX_BODY,
        (413, "text/html; charset=utf-8", bytes(refusal.body)),
        tuple(SECURITY_HEADERS.items()),
    )
