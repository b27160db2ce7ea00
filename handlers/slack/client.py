"""slack_sdk's WebClient over one pooled HTTP session, so connections to Slack are reused.

slack_sdk sends every call through urllib's `urlopen`; given an SSL context (always, here: it
carries REQUESTS_CA_BUNDLE) urllib builds a new opener and opens a new connection per call, so
against real Slack every message paid for a TCP and TLS handshake, and on a busy outbox that was
two thirds of the drain's CPU. This client keeps slack_sdk for everything else (arguments,
retries, errors, SlackResponse) and replaces only the one method that moves the bytes.
"""

from __future__ import annotations

import io
from http.client import HTTPMessage
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

import requests
from requests.adapters import HTTPAdapter
from slack_sdk import WebClient

from reviews.outbox import WORKERS

# Kept alive to Slack: one for each of the outbox's workers and as many again for listeners
# (a modal, a card update after a press) at the same moment. requests.Session shares them
# between threads through urllib3's pool, which is thread-safe; beyond it a call would open a
# connection (a TLS handshake) only to throw it away.
CONNECTIONS = 2 * WORKERS


class PooledWebClient(WebClient):
    """A WebClient whose calls share kept-alive connections. `ca_bundle` as REQUESTS_CA_BUNDLE
    (empty: the system's trust store)."""

    def __init__(self, *, ca_bundle: str = "", **options: Any):
        super().__init__(**options)
        self.session = requests.Session()
        self.session.verify = ca_bundle or True
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=CONNECTIONS)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        """What slack_sdk's urllib version returns; HTTPError for 4xx/5xx, URLError or
        TimeoutError when the network fails, as urllib raises them, so slack_sdk's own handling
        (429 Retry-After, SlackApiError, retry handlers) is unchanged."""
        try:
            response = self.session.post(
                url, data=req.data, headers=dict(req.header_items()), timeout=self.timeout
            )
        except requests.Timeout as error:
            raise TimeoutError(str(error)) from error
        except requests.RequestException as error:
            raise URLError(error) from error  # as urllib says it, for slack_sdk's retry handlers
        if response.status_code >= 400:
            headers = HTTPMessage()
            for name, value in response.headers.items():
                headers[name] = value
            raise HTTPError(
                url, response.status_code, response.reason, headers, io.BytesIO(response.content)
            )
        return {
            "status": response.status_code,
            "headers": response.headers,
            "body": response.content.decode(response.encoding or "utf-8"),
        }
