"""The public pages for patients and families (CONTRACT.md "Patients and families ask
themselves"): Starlette routes, Jinja2 templates, one stylesheet of our own. No JavaScript."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from handlers.limits import BodyLimit
from handlers.web.render import SECURITY_HEADERS, STYLESHEET, Pages, PublicSite
from reviews.context import Services
from reviews.wards import Ward
from settings import Settings

MAX_BODY = 16 * 1024


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

    async def stylesheet(_request: Request) -> Response:
        return pages.css()

    return [
        Route(STYLESHEET, stylesheet, methods=["GET"]),
        Route("/concern", choose_ward, methods=["GET"]),
        Route("/concern/{ward}", ward_page, methods=["GET"]),
    ]


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


def body_limit(settings: Settings) -> BodyLimit:
    """/concern's 16 KB limit, refused with a page that gives the phone line."""
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
