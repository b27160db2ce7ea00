"""Checking that an inbound activity really comes from the Bot Framework (Microsoft Teams).

Every request to POST /api/messages carries a Bearer JWT signed by one of the keys published at
TEAMS_OPENID_METADATA_URL. A token is accepted only when its signature, issuer, audience (our
app id), expiry (with five minutes of skew), the key's endorsement of the activity's channel
and its service URL claim all check out. Keys are cached and fetched again daily, or when a
token names a key id we have not seen (Microsoft rotates keys without notice). A refresh that
fails keeps the cached keys in use and is tried again a few minutes later; before any keys were
ever fetched, a few seconds later (nothing can be answered meanwhile, but no request, forged
or not, may drive a fetch of its own).

A refresh runs in the background, one at a time: a request whose key is cached never waits for
it (a slow login.botframework.com held every Teams request behind its lock). Only a request
whose key is not cached waits for a refresh under way, and for at most WAIT_FOR_KEYS.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

log = logging.getLogger(__name__)

ISSUER = "https://api.botframework.com"
SKEW_SECONDS = 300
KEYS_MAX_AGE = 24 * 3600.0
# Refetch on an unknown key id at most this often: forged tokens must not drive our traffic.
UNKNOWN_KEY_REFETCH_AFTER = 60.0
# After a failed refresh, the cached keys serve this long before we try again: each try can
# hold every Teams request behind it for TIMEOUT.
RETRY_AFTER_FAILURE = 300.0
# Before any keys were ever fetched (Microsoft down when the bot started), a failed refresh is
# tried again after this instead: no Teams request can be answered without keys, so the first
# genuine one after Microsoft is back should not wait minutes; yet anyone may post a
# well-formed token, and each would otherwise cost a fetch (one thread, up to two TIMEOUTs).
# 15 s: whatever is posted, at most four fetches a minute; once Microsoft answers again, Teams
# is answered again within 15 s (each request meanwhile gets 503 at once, for a retry).
RETRY_BEFORE_FIRST_KEYS = 15.0
TIMEOUT = 10.0
# How long a request whose key is not cached waits for the refresh that may bring it; then 503
# (the Bot Framework retries) while the refresh carries on. Well inside the Bot Framework's
# 15 s for an answer, with the activity's own work still to do.
WAIT_FOR_KEYS = 5.0


CLAIM_ERRORS = (
    jwt.ExpiredSignatureError,
    jwt.ImmatureSignatureError,
    jwt.InvalidAudienceError,
    jwt.InvalidIssuerError,
    jwt.InvalidIssuedAtError,
    jwt.MissingRequiredClaimError,
)


class Unauthorized(Exception):
    """The request is not from the Bot Framework for this bot; the message says why (for logs).
    `signed`: Microsoft's key did sign the token, but its claims are refused (expired, not yet
    valid, another issuer or service URL). `ours`: and it is a token for this bot (its audience
    is our app id). Anyone can forge, and anyone can have Microsoft sign tokens for a bot of
    their own; only a wrong clock or a replay gives a token for us refused, so that is logged
    apart from the floods that could bury it. A signed token for another app (or our app id
    mistyped) is a kind of its own."""

    def __init__(self, message: str, *, signed: bool = False, ours: bool = False):
        super().__init__(message)
        self.signed = signed
        self.ours = ours


class KeysUnavailable(Exception):
    """The token names a key we do not have, and Microsoft's keys cannot be fetched just now."""


class RefreshNotStarted(KeysUnavailable, RuntimeError):
    """The key refresh this request needed could not be started: `in_background` raised
    (Thread.start(): "can't start new thread", a process at its thread limit). The request is
    answered 503 like any KeysUnavailable; a RuntimeError as Thread.start()'s own error is."""


class Forbidden(Exception):
    """A genuine Bot Framework request from somewhere this bot does not serve (another channel
    such as Web Chat, whose sender ids the client chooses, or another tenant)."""


def check_origin(activity: dict[str, Any], tenant_id: str) -> None:
    """Forbidden unless the activity comes from Microsoft Teams in the trust's own tenant."""
    channel = activity.get("channelId")
    if channel != "msteams":
        raise Forbidden(f"channel {str(channel)[:40]!r} is not msteams")
    tenants = {
        ((activity.get("channelData") or {}).get("tenant") or {}).get("id"),
        (activity.get("conversation") or {}).get("tenantId"),
    } - {None}
    if tenants != {tenant_id}:
        raise Forbidden("the activity is not from the configured tenant")


def in_a_thread(job: Callable[[], None]) -> None:
    threading.Thread(target=job, name="teams-keys", daemon=True).start()


class TokenVerifier:
    """Verifies the Authorization header of inbound activities against Microsoft's keys.
    `in_background` runs a key refresh (default: in a thread of its own)."""

    def __init__(
        self,
        *,
        app_id: str,
        metadata_url: str,
        http: requests.Session,
        monotonic: Callable[[], float] = time.monotonic,
        unknown_key_refetch_after: float = UNKNOWN_KEY_REFETCH_AFTER,
        wait_for_keys: float = WAIT_FOR_KEYS,
        in_background: Callable[[Callable[[], None]], None] = in_a_thread,
    ):
        self.app_id = app_id
        self.metadata_url = metadata_url
        self.http = http
        self.monotonic = monotonic
        self.unknown_key_refetch_after = unknown_key_refetch_after
        self.wait_for_keys = wait_for_keys
        self.in_background = in_background
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")  # when the last refresh was started
        self._failing = False  # the last refresh failed (and that was logged once)
        self._failure = ""  # why, while no keys have ever been fetched
        self._refreshing: threading.Event | None = None  # set when the refresh under way ends
        # Guards the fields above; never held while fetching.
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, activity: dict[str, Any]) -> dict[str, Any]:
        """The token's claims; Unauthorized when anything about it is wrong.

        Without the token's key in the cache, fetching the keys can also fail, or not end
        within WAIT_FOR_KEYS (KeysUnavailable): the caller answers 503 so the Bot Framework
        retries, rather than refusing a genuine request.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized(f"malformed token: {error}") from None
        if header.get("alg") != "RS256":
            raise Unauthorized(f"algorithm {str(header.get('alg'))[:40]!r} is not accepted")
        key = self._key(str(header.get("kid") or ""))
        claims = self._decode(token, key)
        channel = str(activity.get("channelId") or "")
        if channel not in key.get("endorsements", []):
            raise Unauthorized(
                f"the signing key does not endorse channel {channel[:40]!r}",
                signed=True,
                ours=True,
            )
        claimed = claims.get("serviceurl") or claims.get("serviceUrl")
        if not claimed or not _same_url(str(claimed), str(activity.get("serviceUrl") or "")):
            raise Unauthorized(
                "the token's service URL does not match the activity's", signed=True, ours=True
            )
        return claims

    def _decode(self, token: str, key: dict[str, Any]) -> dict[str, Any]:
        try:
            public_key = jwt.PyJWK(key, algorithm="RS256").key
            return jwt.decode(
                token,
                public_key,
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=ISSUER,
                leeway=SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            # PyJWT checks the signature before any claim: a claim refused was signed, so its
            # audience is Microsoft's word (PyJWT looks at it after the expiry, though).
            signed = isinstance(error, CLAIM_ERRORS)
            ours = signed and self._for_us(token)
            said = f"{type(error).__name__}: {error}"
            raise Unauthorized(said, signed=signed, ours=ours) from None

    def _for_us(self, token: str) -> bool:
        """Whether a token whose signature was found good names this bot as its audience."""
        try:
            audience = jwt.decode(token, options={"verify_signature": False}).get("aud")
        except jwt.PyJWTError:
            return False
        return self.app_id in (audience if isinstance(audience, list) else [audience])

    def _key(self, kid: str) -> dict[str, Any]:
        with self._lock:
            now = self.monotonic()
            key = self._keys.get(kid)
            refreshing, started = self._refreshing, None
            if refreshing is None and self._refresh_due(kid, now):
                refreshing = started = self._refreshing = threading.Event()
                self._attempted_at = now
        if started is not None:
            self._start(started, now)
        if key is not None:
            return key  # the refresh under way, if any, finishes without this request
        if refreshing is not None and not refreshing.wait(self.wait_for_keys):
            raise KeysUnavailable(f"signing key {kid[:40]!r}: the keys are still being fetched")
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._fetched_at is None:
                raise KeysUnavailable(f"no signing keys could be fetched ({self._failure})")
            if key is None and self._failing:
                raise KeysUnavailable(f"signing key {kid[:40]!r} is not cached")
        if key is None:
            raise Unauthorized(f"unknown signing key {kid[:40]!r}")
        return key

    def _start(self, refreshing: threading.Event, now: float) -> None:
        """Runs the refresh `refreshing` stands for in the background. When it cannot be
        started, that counts as a failed refresh (tried again after the back-off), whoever
        waits for it is woken, and this request is answered 503 (RefreshNotStarted): left
        set, the refresh under way would never end, and no refresh would ever run again."""
        try:
            self.in_background(lambda: self._refresh(now))
        except BaseException as error:
            with self._lock:
                if self._refreshing is refreshing:  # else the job ran, and ended it itself
                    self._refreshing = None
                    self._failed(error)
            refreshing.set()
            if not isinstance(error, Exception):
                raise
            raise RefreshNotStarted(
                f"a key refresh could not start ({type(error).__name__}: {error})"
            ) from error

    def _refresh_due(self, kid: str, now: float) -> bool:
        since_attempt = now - self._attempted_at
        if self._fetched_at is None:
            # Nothing can be checked without keys; after a failure, try again soon, not on
            # every request.
            return not self._failing or since_attempt >= RETRY_BEFORE_FIRST_KEYS
        stale = now - self._fetched_at > KEYS_MAX_AGE
        if self._failing:
            return (stale or kid not in self._keys) and since_attempt >= RETRY_AFTER_FAILURE
        return stale or (kid not in self._keys and since_attempt >= self.unknown_key_refetch_after)

    def _refresh(self, started: float) -> None:
        """Fetches the keys (started at `started`); when that fails, any cached keys stay in
        use. Either way, whoever waits for this refresh is then woken."""
        keys: dict[str, dict[str, Any]] | None = None
        try:
            keys = self._fetch_keys()
        # Anything (a KeyError or ValueError for a document of the wrong shape, a bug): in
        # this thread of its own, whoever waits must still be woken and the next refresh let
        # start.
        except Exception as error:
            with self._lock:
                self._failed(error)
        with self._lock:
            if keys is not None:
                self._keys, self._fetched_at, self._failing = keys, started, False
            done, self._refreshing = self._refreshing, None
        if done is not None:
            done.set()

    def _failed(self, error: BaseException) -> None:
        """Called with the lock held: logged once until a refresh works again."""
        if self._fetched_at is None:
            self._failure = type(error).__name__
        elif not self._failing:
            log.warning(
                "Bot Framework signing keys could not be refreshed (%s): using the %d cached "
                "keys, trying again every %d minutes",
                type(error).__name__,
                len(self._keys),
                RETRY_AFTER_FAILURE // 60,
            )
        self._failing = True

    def _fetch_keys(self) -> dict[str, dict[str, Any]]:
        metadata = self._get_json(self.metadata_url)
        jwks = self._get_json(str(metadata["jwks_uri"]))
        keys = {str(k["kid"]): k for k in jwks.get("keys", []) if k.get("kid")}
        log.info("Bot Framework signing keys fetched (%d keys)", len(keys))
        return keys

    def _get_json(self, url: str) -> dict[str, Any]:
        response = self.http.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        data = json.loads(response.text)
        if not isinstance(data, dict):
            raise requests.RequestException(f"{url} did not return a JSON object")
        return data


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()
