"""Rendering the public pages: Jinja2 with autoescaping, and the headers every page carries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from reviews.wards import Ward

HERE = Path(__file__).resolve().parent
STYLESHEET = "/concern-style.css"

# Nothing from another site, no script at all, no framing; the status link's token must not
# leak to another site through the Referer header.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class PublicSite:
    """What every public page needs to say: the trust's phone line and its public address."""

    phone: str  # CONCERN_PHONE; a ward's own phone wins on that ward's pages
    public_url: str = ""

    def phone_for(self, ward: Ward | None) -> str:
        return (ward.phone if ward and ward.phone else "") or self.phone


class Pages:
    """The templates directory, rendered with autoescaping (typed text is never markup)."""

    def __init__(self, site: PublicSite):
        self.site = site
        self.environment = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,  # a missing value is a bug to see, not a blank to miss
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.stylesheet = (HERE / "static" / "concern.css").read_bytes()

    def render(
        self, template: str, *, status: int = 200, ward: Ward | None = None, **context: Any
    ) -> HTMLResponse:
        phone = context.pop("phone", None) or self.site.phone_for(ward)  # a page may name its own
        html = self.environment.get_template(template).render(
            ward=ward, phone=phone, stylesheet=STYLESHEET, **context
        )
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        return HTMLResponse(html, status_code=status, headers=headers)

    def css(self) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}
        return Response(self.stylesheet, media_type="text/css", headers=headers)
