"""Microsoft, on loopback: a Bot Framework token issuer, an Entra token endpoint, a Bot Connector.

One HTTPS server (a self-signed certificate for 127.0.0.1, made with `cryptography`; msal
refuses plain http) serves:
- the Bot Framework OpenID metadata and JWKS (real RSA keys with endorsements) that inbound
  tokens are checked against, and `token()` to sign activities' JWTs as the Bot Framework does;
- `{tenant}/v2.0/.well-known/openid-configuration` and `{tenant}/oauth2/v2.0/token`, the
  client-credentials endpoint msal talks to;
- `v3/conversations...`, the Bot Connector, which records every call and can be told to fail;
  it also answers who is who (`.../members/{id}` and the paged roster, `.../pagedmembers`) from
  the people given to `add_member`. A conversation in `not_installed` is one whose team the bot
  was never added to (or was removed from): every connector call about it is refused, 403
  BotNotInConversationRoster, as Teams refuses it.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.fake_slack import POLL

ISSUER = "https://api.botframework.com"
APP_ID = "00000000-0000-4000-8000-00000000b07a"
APP_PASSWORD = "test-app-password"
TENANT = "11111111-2222-4333-8444-555555555555"


@dataclass
class Call:
    method: str
    path: str  # percent-decoded
    body: dict[str, Any]
    authorization: str

    @property
    def said(self) -> str:
        """What a message says first: its text, or a card's summary (its notification)."""
        return str(self.body.get("text") or self.body.get("summary") or "")


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey
    endorsements: list[str] = field(default_factory=lambda: ["msteams"])

    def jwk(self) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "endorsements": self.endorsements}


@functools.cache
def _first_key() -> SigningKey:
    # RSA key generation is the slow part of a test; one starting key per run is enough.
    return new_key()


def new_key(kid: str | None = None, endorsements: list[str] | None = None) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid or secrets.token_hex(8), private, endorsements or ["msteams"])


class FakeMicrosoft:
    """Start with `with FakeMicrosoft(tmp_path) as ms:`; `ms.url` is its https base URL."""

    def __init__(self, directory: Path):
        self.ca_file = directory / "fake-microsoft.pem"
        self.keys = [_first_key()]
        self.calls: list[Call] = []
        # (status, Retry-After, path part, an HTML page answered instead of the JSON error)
        self.failures: list[tuple[int, float | None, str, str | None]] = []
        self.metadata_fetches = 0
        self.keys_down = False  # the metadata answers 503 (login.botframework.com has an outage)
        self.keys_waiting = 0  # fetches of the keys held by hold_keys() just now
        self._keys_open = threading.Event()
        self._keys_open.set()
        self.token_requests = 0
        self.issued_tokens: set[str] = set()
        self.members: list[dict[str, str]] = []
        self.roster_page_size = 500  # the real connector's largest page
        self.member_delay = 0.0  # seconds the connector takes to say who someone is
        self.not_installed: set[str] = set()  # conversations whose team lacks the bot
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca_pem, cert_pem, key_pem = _tls_material()
        self.ca_file.write_bytes(ca_pem)
        (directory / "fake-microsoft.crt").write_bytes(cert_pem)
        (directory / "fake-microsoft.key").write_bytes(key_pem)
        context.load_cert_chain(directory / "fake-microsoft.crt", directory / "fake-microsoft.key")
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL}, daemon=True
        )

    def __enter__(self) -> FakeMicrosoft:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release_keys()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # What the bot is configured with.
    @property
    def metadata_url(self) -> str:
        return f"{self.url}/botframework/openid"

    @property
    def authority(self) -> str:
        return f"{self.url}/{TENANT}"

    @property
    def service_url(self) -> str:
        return f"{self.url}/"

    def session(self) -> requests.Session:
        """The http_client the bot is given: it trusts this server's certificate."""
        session = requests.Session()
        # Else REQUESTS_CA_BUNDLE from the environment overrides `verify` on every request.
        session.trust_env = False
        session.verify = str(self.ca_file)
        return session

    def hold_keys(self) -> None:
        """The keys document (the JWKS) does not answer until release_keys(): a slow
        login.botframework.com. The metadata document still answers."""
        self._keys_open.clear()

    def release_keys(self) -> None:
        self._keys_open.set()

    # Inbound tokens, signed as the Bot Framework signs them.
    def token(
        self,
        *,
        service_url: str | None = None,
        audience: str = APP_ID,
        issuer: str = ISSUER,
        expires_in: float = 3600,
        not_before_in: float = 0,
        key: SigningKey | None = None,
        kid: str | None = None,
        claim: str = "serviceurl",
    ) -> str:
        key = key or self.keys[0]
        now = time.time()
        claims = {
            "iss": issuer,
            "aud": audience,
            "exp": int(now + expires_in),
            "nbf": int(now + not_before_in),
            claim: service_url or self.service_url,
        }
        headers = {"kid": kid or key.kid}
        return jwt.encode(claims, key.private, algorithm="RS256", headers=headers)

    # The connector.
    def fail_next(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        times: int = 1,
        to: str = "",
        page: str | None = None,
    ) -> None:
        """The next `times` connector calls fail (only those whose path holds `to`, if given);
        with `page`, answered by that HTML with `status`, as a corporate proxy answers in the
        connector's place."""
        with self._lock:
            self.failures += [(status, retry_after, to, page)] * times

    def add_member(self, name: str, aad_object_id: str, email: str, upn: str | None = None) -> None:
        """A person in the tenant (and the outreach team), as the connector describes them."""
        self.members.append(
            {
                "id": f"29:{aad_object_id[:8]}",
                "name": name,
                "aadObjectId": aad_object_id,
                "email": email,
                "userPrincipalName": upn or email,
            }
        )

    def connector_calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def posts_to(self, conversation: str) -> list[Call]:
        path = f"/v3/conversations/{conversation}/activities"
        return [c for c in self.connector_calls("POST") if c.path == path]

    def _connector(
        self, method: str, path: str, body: dict[str, Any], auth: str, query: str = ""
    ) -> tuple:
        with self._lock:
            if auth.removeprefix("Bearer ") not in self.issued_tokens:
                return 401, {"error": {"code": "Unauthorized"}}, {}
            self.calls.append(Call(method, path, body, auth))
            failure = next((f for f in self.failures if f[2] in path), None)
            if failure is not None:
                self.failures.remove(failure)
                status, retry_after, _, page = failure
                if page is not None:
                    return status, page, {}
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return status, {"error": {"code": "Throttled"}}, headers
            if _conversation(path) in self.not_installed:
                return 403, NOT_IN_ROSTER, {}
            count = len(self.calls)
        if method == "GET":
            return self._who(path, parse_qs(query))
        if method == "POST" and path == "/v3/conversations":
            return 201, {"id": f"a:personal-{body['members'][0]['id']}"}, {}
        if method == "PUT":
            return 200, {"id": path.rsplit("/", 1)[1]}, {}
        if body.get("text") and body.get("attachments"):
            # As the real connector: text and a card become two messages, and its 202 names
            # neither (so neither can be updated).
            return 202, "", {}
        return 201, {"id": f"activity-{count}"}, {}

    def install(self, conversation: str) -> None:
        """Someone adds the bot to the team holding `conversation`: Teams takes its calls."""
        with self._lock:
            self.not_installed.discard(conversation)

    def _who(self, path: str, query: dict[str, list[str]]) -> tuple:
        if path.endswith("/pagedmembers"):
            start = int((query.get("continuationToken") or ["0"])[0])
            size = min(int((query.get("pageSize") or ["500"])[0]), self.roster_page_size)
            page: dict[str, Any] = {"members": self.members[start : start + size]}
            if start + size < len(self.members):
                page["continuationToken"] = str(start + size)
            return 200, page, {}
        wanted = path.rsplit("/members/", 1)[-1]
        time.sleep(self.member_delay)
        for member in self.members:
            if wanted in (member["id"], member["aadObjectId"]):
                return 200, member, {}
        return 404, {"error": {"code": "MemberNotFoundInConversation"}}, {}

    def _token_endpoint(self, form: dict[str, list[str]]) -> tuple:
        with self._lock:
            self.token_requests += 1
        if form.get("client_id") != [APP_ID] or form.get("client_secret") != [APP_PASSWORD]:
            return 401, {"error": "invalid_client", "error_description": "bad credentials"}, {}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.issued_tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}, {}

    def _get(self, path: str) -> tuple:
        if path == "/botframework/openid":
            with self._lock:
                self.metadata_fetches += 1
            if self.keys_down:
                return 503, {"error": "service unavailable"}, {}
            document = {
                "issuer": ISSUER,
                "jwks_uri": f"{self.url}/botframework/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
            return 200, document, {}
        if path == "/botframework/keys":
            with self._lock:
                self.keys_waiting += 1
            self._keys_open.wait(timeout=60)
            with self._lock:
                self.keys_waiting -= 1
            return 200, {"keys": [k.jwk() for k in self.keys]}, {}
        if path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
            base = f"{self.url}/{TENANT}"
            return (
                200,
                {
                    "issuer": f"{base}/v2.0",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                },
                {},
            )
        return 404, {"error": "not found"}, {}


NOT_IN_ROSTER = {
    "error": {
        "code": "BotNotInConversationRoster",
        "message": "The bot is not part of the conversation roster.",
    }
}


def _conversation(path: str) -> str:
    """The conversation a connector path is about ("19:a@thread.tacv2" of a thread's
    "/v3/conversations/19:a@thread.tacv2;messageid=7/activities"); "" for none."""
    parts = path.split("/")
    return parts[3].split(";", 1)[0] if len(parts) > 3 else ""


def _handler(fake: FakeMicrosoft) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> None:
            page = isinstance(body, str)  # a proxy's page, in the connector's place
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "text/html" if page else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.startswith("/v3/conversations/"):
                self._connector("GET", self.path, b"")
                return
            self._answer(*fake._get(self.path.split("?", 1)[0]))

        def do_POST(self) -> None:  # noqa: N802
            raw, path = self._body(), self.path.split("?", 1)[0]
            if path.endswith("/oauth2/v2.0/token"):
                form = parse_qs(raw.decode())
                self._answer(*fake._token_endpoint(form))
                return
            self._connector("POST", path, raw)

        def do_PUT(self) -> None:  # noqa: N802
            self._connector("PUT", self.path.split("?", 1)[0], self._body())

        def _connector(self, method: str, target: str, raw: bytes) -> None:
            path, _, query = target.partition("?")
            body = json.loads(raw or b"{}")
            auth = self.headers.get("Authorization") or ""
            self._answer(*fake._connector(method, unquote(path), body, auth, query))

    return Handler


@functools.cache
def _tls_material() -> tuple[bytes, bytes, bytes]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (PEM: CA, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake Microsoft test CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    server = (
        _builder(name, ca_name, key, now)
        .add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem), server.public_bytes(pem), key_pem


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
