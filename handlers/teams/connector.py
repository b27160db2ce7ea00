"""The Bot Connector REST API: an msal token, then post, update and create-conversation calls,
and the one cheap call (`reach`) with which the minute's platform check proves the connector up.

Answers map onto the outbox's retry rules: 429 and 412 (Teams' own throttling and concurrent
edits), 502, 503, 504 and network failures are worth retrying (Retry-After honoured); any other
4xx is permanent, because sending the same thing again cannot help.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote, urlparse

import msal  # type: ignore[import-untyped]
import requests

from reviews.outbox import DeliveryError

log = logging.getLogger(__name__)

SCOPE = "https://api.botframework.com/.default"
TIMEOUT = 10.0
REACH_TIMEOUT = 5.0  # the minute's check: a connector this slow is as good as down
RETRYABLE = {412, 429, 500, 502, 503, 504}
THROTTLED = {412, 429}  # the connector is up: slow down (429), or an edit raced another (412)
# Entra refusing the bot's own id or secret (an expired TEAMS_APP_PASSWORD): every message
# fails alike until IT fixes it, so messages are held, not failed.
CREDENTIAL_TOKEN_ERRORS = {"invalid_client", "unauthorized_client"}
PERMANENT_TOKEN_ERRORS = {"invalid_scope", "invalid_request"}
MICROSOFT_AUTHORITY_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
)


class Connector:
    """Calls to one bot's Bot Connector. The msal app is made on first use, so the bot starts
    (and answers /healthz) while Microsoft is unreachable."""

    def __init__(self, *, app_id: str, app_password: str, authority: str, http: requests.Session):
        self.app_id = app_id
        self._password = app_password
        self.authority = authority
        self.http = http
        self._msal: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def post_activity(
        self, service_url: str, conversation_id: str, activity: dict[str, Any]
    ) -> str:
        """Post into a conversation (or a channel thread); the new activity's id. DeliveryError
        (uncertain) for an answer naming none, which is not the connector's: it names every
        activity it posts, and a proxy or WAF in its place may answer an empty 200 or a 204."""
        url = f"{_base(service_url)}v3/conversations/{quote(conversation_id, safe='')}/activities"
        posted = str(self._call("POST", url, activity).get("id") or "")
        if not posted:
            raise DeliveryError(
                "an answer naming no activity posted, not the Bot Connector's", uncertain=True
            )
        return posted

    def update_activity(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        """Replace a posted activity (a card). DeliveryError (uncertain) for an empty answer:
        the connector answers an update with the activity's identification, as it does a post,
        so an empty 200 or a 204 is a proxy's in its place and says nothing of the update."""
        url = (
            f"{_base(service_url)}v3/conversations/{quote(conversation_id, safe='')}"
            f"/activities/{quote(activity_id, safe='')}"
        )
        if not self._call("PUT", url, {**activity, "id": activity_id}):
            raise DeliveryError(
                "an empty answer to an update, not the Bot Connector's", uncertain=True
            )

    def create_personal_conversation(self, service_url: str, member_id: str, tenant_id: str) -> str:
        """Open (or find) the 1:1 chat between the bot and `member_id`; its conversation id.

        `member_id` is the person's Teams id (29:...) or their Entra object id; Teams accepts
        either once the app is installed for them, and refuses (403/404: permanent) otherwise.
        """
        body = {
            "bot": {"id": f"28:{self.app_id}"},
            "members": [{"id": member_id}],
            "isGroup": False,
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        }
        opened = str(
            self._call("POST", f"{_base(service_url)}v3/conversations", body).get("id") or ""
        )
        if not opened:
            # As post_activity: a proxy's empty answer in the connector's place. Nothing was
            # posted yet, so it is simply tried again.
            raise DeliveryError("an answer naming no conversation, not the Bot Connector's")
        return opened

    def member(
        self, service_url: str, conversation_id: str, member_id: str, *, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """One member of a conversation: id, name, aadObjectId, email, userPrincipalName.
        DeliveryError when Teams does not know them there (404: permanent) or cannot answer."""
        url = (
            f"{_base(service_url)}v3/conversations/{quote(conversation_id, safe='')}"
            f"/members/{quote(member_id, safe='')}"
        )
        return self._call("GET", url, timeout=timeout)

    def members_page(
        self,
        service_url: str,
        conversation_id: str,
        continuation: str | None,
        *,
        page_size: int = 500,
    ) -> dict[str, Any]:
        """One page of a team's roster: {"members": [...], "continuationToken": ...}."""
        url = f"{_base(service_url)}v3/conversations/{quote(conversation_id, safe='')}/pagedmembers"
        params = {"pageSize": str(page_size)}
        if continuation:
            params["continuationToken"] = continuation
        return self._call("GET", url, params=params)

    def _call(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            response = self.http.request(
                method, url, json=body, params=params, headers=headers, timeout=timeout
            )
        except requests.RequestException as error:
            # A post whose answer did not come (a read timeout, a connection dropped after the
            # request went) may have arrived: Teams cannot be asked, so it is not resent for ever.
            sent = method != "GET" and not isinstance(error, requests.ConnectionError)
            raise DeliveryError(f"network: {type(error).__name__}", uncertain=sent) from error
        if response.status_code in RETRYABLE:
            raise DeliveryError(
                f"Bot Connector {response.status_code}",
                retry_after=_retry_after(response),
                throttled=response.status_code in THROTTLED,
                uncertain=method != "GET" and response.status_code in (502, 504),
            )
        if response.status_code == 401:
            # The connector refused our token: the bot's registration, not this message.
            raise DeliveryError("Bot Connector refused the bot's token (401)", credentials=True)
        try:
            data = response.json() if response.content else {}
        except ValueError:
            # Not the connector's answer (it answers in JSON): a corporate proxy's error page in
            # its place, as a 200 or a 4xx. It says nothing of the message, which may or may not
            # have reached the connector: neither posted nor refused, so tried again.
            raise DeliveryError(_not_the_connectors(response), uncertain=method != "GET") from None
        if response.status_code >= 400:
            raise DeliveryError(
                f"Bot Connector refused ({response.status_code}: {_error_code(response)})",
                permanent=True,
            )
        return data if isinstance(data, dict) else {}

    def reach(self, service_url: str, conversation_id: str) -> None:
        """One cheap call that really reaches the Bot Connector with the bot's token (msal
        serves the token from its cache, so asking Entra alone proves nothing about the
        connector): the bot's own membership of `conversation_id`. Any answer but a 5xx or a
        401 shows the connector up and taking the token (the bot is no member of its own
        conversation: 404). DeliveryError: credentials (Entra or the connector refuses the
        bot), or transient (no answer, a 5xx, Entra unreachable)."""
        token = self._token()
        url = (
            f"{_base(service_url)}v3/conversations/{quote(conversation_id, safe='')}"
            f"/members/{quote(f'28:{self.app_id}', safe='')}"
        )
        headers = {"Authorization": f"Bearer {token}"}
        try:
            response = self.http.request("GET", url, headers=headers, timeout=REACH_TIMEOUT)
        except requests.RequestException as error:
            raise DeliveryError(f"Bot Connector: network: {type(error).__name__}") from error
        if response.status_code == 401:
            raise DeliveryError("Bot Connector refused the bot's token (401)", credentials=True)
        if response.status_code >= 500:
            raise DeliveryError(f"Bot Connector {response.status_code}")
        try:
            response.json() if response.content else None
        except ValueError:
            raise DeliveryError(_not_the_connectors(response)) from None

    def _token(self) -> str:
        try:
            result = self._app().acquire_token_for_client(scopes=[SCOPE])
        except msal.exceptions.MsalServiceError as error:  # 5xx from the token endpoint
            raise DeliveryError(f"token endpoint: {error.error}") from None
        except (requests.RequestException, ValueError) as error:
            raise DeliveryError(f"token endpoint: {type(error).__name__}") from None
        if "access_token" in result:
            return str(result["access_token"])
        # The description can echo our request; the code alone says what to fix. Not logged
        # here: the outbox logs a refused credential once per outage, not once per message.
        code = str(result.get("error") or "unknown")
        if code in CREDENTIAL_TOKEN_ERRORS:
            raise DeliveryError(
                f"token refused: {code} (check TEAMS_APP_ID / TEAMS_APP_PASSWORD)",
                credentials=True,
            )
        raise DeliveryError(f"token refused: {code}", permanent=code in PERMANENT_TOKEN_ERRORS)

    def _app(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._msal is None:
                microsoft = urlparse(self.authority).hostname in MICROSOFT_AUTHORITY_HOSTS
                self._msal = msal.ConfidentialClientApplication(
                    self.app_id,
                    client_credential=self._password,
                    authority=self.authority,
                    http_client=self.http,
                    # A sovereign cloud or a local issuer: used as given, no discovery call.
                    instance_discovery=None if microsoft else False,
                    validate_authority=microsoft,
                    # Token and discovery calls: a slow Entra must not hold a Teams press (or a
                    # send inside its outbox lease) past its deadline.
                    timeout=5,
                )
            return self._msal


def _base(service_url: str) -> str:
    return service_url if service_url.endswith("/") else service_url + "/"


def _not_the_connectors(response: requests.Response) -> str:
    kind = response.headers.get("Content-Type") or "no content type"
    return f"an answer that is not the Bot Connector's ({response.status_code}, {kind})"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _error_code(response: requests.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or response.reason)
    except (ValueError, AttributeError):
        return str(response.reason)
