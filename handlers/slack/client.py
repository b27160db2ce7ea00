"""slack_sdk's WebClient over a pool of kept-alive connections to Slack.

slack_sdk sends every call through urllib's `urlopen`; given an SSL context (always, here: it
carries REQUESTS_CA_BUNDLE) urllib builds a new opener and opens a new connection per call, so
against real Slack every message paid for a TCP and TLS handshake, and on a busy outbox that was
two thirds of the drain's CPU. This client keeps slack_sdk for everything else (arguments,
retries, errors, SlackResponse) and replaces only the one method that moves the bytes, with
urllib3 (what requests is built on, at half requests' CPU a call: every request form opened and
every message sent makes one).
"""

from __future__ import annotations

import io
import ssl
import urllib.request
from http.client import HTTPMessage
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

import urllib3
from slack_sdk import WebClient

from handlers.slack import after_ack
from handlers.slack.app import LISTENER_THREADS
from reviews.outbox import WORKERS

# Kept alive to Slack: one for each of the outbox's workers and as many again for listeners
# (a modal, a card update after a press) at the same moment. urllib3's pool is thread-safe;
# beyond it a call would open a connection (a TLS handshake) only to throw it away.
# As many as may call Slack at once: bolt's listener threads opening forms in a burst, the
# threads telling pressers privately, and the outbox's workers. Beyond the pool urllib3 threw
# each extra connection away, to be opened again (a TLS handshake) by the next form, and
# logged a warning for each.
CONNECTIONS = LISTENER_THREADS + after_ack.THREADS + 2 * WORKERS


class PooledWebClient(WebClient):
    """A WebClient whose calls share kept-alive connections. `ca_bundle` as REQUESTS_CA_BUNDLE
    (empty: the system's trust store). A proxy named by HTTPS_PROXY (or HTTP_PROXY for an
    http:// SLACK_API_URL) is used unless NO_PROXY covers Slack's host, read once at start."""

    def __init__(self, *, ca_bundle: str = "", **options: Any):
        super().__init__(**options)
        self.pool = connection_pool(self.base_url, ca_bundle)

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        """What slack_sdk's urllib version returns; HTTPError for 4xx/5xx, URLError or
        TimeoutError when the network fails, as urllib raises them, so slack_sdk's own handling
        (429 Retry-After, SlackApiError, retry handlers) is unchanged."""
        try:
            response = self.pool.request(
                req.get_method(),
                url,
                body=req.data,  # type: ignore[arg-type]  # slack_sdk always gives bytes or None
                headers=dict(req.header_items()),
                timeout=self.timeout,
                retries=False,  # slack_sdk's retry handlers decide, as they do with urllib
            )
        except urllib3.exceptions.NewConnectionError as error:  # refused, unresolvable
            raise URLError(error) from error
        except urllib3.exceptions.TimeoutError as error:
            raise TimeoutError(str(error)) from error
        except urllib3.exceptions.HTTPError as error:
            raise URLError(error) from error  # as urllib says it, for slack_sdk's retry handlers
        if response.status >= 400:
            headers = HTTPMessage()
            for name, value in response.headers.items():
                headers[name] = value
            raise HTTPError(
                url, response.status, response.reason or "", headers, io.BytesIO(response.data)
            )
        return {
            "status": response.status,
            "headers": response.headers,
            "body": response.data.decode("utf-8"),
        }


def connection_pool(base_url: str, ca_bundle: str) -> urllib3.PoolManager:
    options: dict[str, Any] = {
        "maxsize": CONNECTIONS,
        "ssl_context": ssl.create_default_context(cafile=ca_bundle or None),
    }
    proxy = environment_proxy(base_url)
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`, as requests and urllib would choose it."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)
