"""The bolt App for one bot, and its Starlette route. Nothing here is module-global."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from handlers.slack import actions, checkin, commands, direct, home, submissions
from handlers.slack.after_ack import AfterAck
from handlers.slack.form_relay import FormRelay
from reviews.context import Services
from settings import Settings

log = logging.getLogger(__name__)

# Threads running listeners. bolt's default is 5: a listener acks first and then works on, so
# under a burst the acks of everyone after the fifth waited for earlier listeners' work (a
# press's state change, a form's commit) to finish. Threads are made only as they are needed.
LISTENER_THREADS = 64


def build_slack_app(
    services: Services,
    settings: Settings,
    client: WebClient,
    after_ack: AfterAck,
    relay: FormRelay | None = None,
) -> App:
    """A bolt App answering with `client`'s token. The token is never checked on a request's
    path: bolt's own check (auth.test at construction, or on the first request) stopped the
    whole bot when Slack was down at start, or answered every request 500 (a request form
    included, never recorded) while Slack's Web API could not be reached from here. The
    scheduler's platform check (reviews.outbox.check_platforms) reports a refused token or an
    unreachable Slack instead.

    Over HTTP every request must carry a valid signature made with SLACK_SIGNING_SECRET, no
    older than five minutes (bolt answers 401 otherwise). Socket Mode has no signatures: the
    app-level token authenticates the socket instead, so verification is off there.
    A press's change of state runs on `after_ack`; give slack_routes the same one, so that it
    waits behind the acks of requests still in flight. `/rapidreview`'s forms open through
    `relay`: here, or handed to the sender process once it runs (form_relay.py).

    ValueError when HTTP mode has no signing secret.
    """
    if not settings.slack_socket_mode and not settings.slack_signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET: needed to verify Slack's requests over HTTP")
    token = client.token
    bolt_logger = quiet_bolt_logger()
    # bolt reads SLACK_BOT_TOKEN from the environment itself, and warned at every start that the
    # token it found there is unused beside `client` (it is: `authorize` gives it).
    unused_token = logging.Filter()
    unused_token.filter = lambda record: (  # type: ignore[method-assign]
        record.getMessage() != warning_client_prioritized_and_token_skipped()
    )
    bolt_logger.addFilter(unused_token)
    try:
        app = _app(settings, client, token, bolt_logger)
    finally:
        bolt_logger.removeFilter(unused_token)
    share_connections(app, client)
    commands.register(app, services, settings, relay or FormRelay(services, client))
    for group in (submissions, checkin, home, direct):
        group.register(app, services, settings)
    actions.register(app, services, settings, after_ack)
    return app


def _app(settings: Settings, client: WebClient, token: str | None, logger: logging.Logger) -> App:
    return App(
        client=tokenless(client),
        authorize=lambda enterprise_id, team_id: AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token=token
        ),
        # Given explicitly, even when empty, so bolt never falls back to os.environ.
        signing_secret=settings.slack_signing_secret,
        request_verification_enabled=not settings.slack_socket_mode,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="slack"),
        token_verification_enabled=False,
        logger=logger,
    )


def share_connections(app: App, client: WebClient) -> None:
    """Listeners call Slack through `client`, whose connections stay open. bolt hands each
    request a new WebClient of its own, and each of those opened a new connection (against real
    Slack, a TLS handshake) for every call: every request form opened paid for one."""

    @app.middleware
    def pooled(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        context["client"] = client
        return next()


def tokenless(client: WebClient) -> WebClient:
    """`client`'s settings without its token: the token comes from `authorize`, and bolt
    warns that a token given beside an authorize function is ignored."""
    return WebClient(
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        logger=client.logger,
        retry_handlers=client.retry_handlers,
    )


def quiet_bolt_logger() -> logging.Logger:
    """bolt's logger, held at WARNING: at INFO bolt quotes a refused request's whole body (the
    form, with its NHS and call-back numbers). Its middleware copies this logger's level."""
    bolt = logging.getLogger("slack_bolt")
    bolt.setLevel(logging.WARNING)
    return bolt


def slack_routes(app: App, after_ack: AfterAck) -> list[Route]:
    """POST /slack/events, dispatched on a worker thread so the event loop never blocks; each
    request counted in flight on `after_ack` (build_slack_app's) until its answer is built."""

    async def slack_events(request: Request) -> Response:
        with after_ack.request():
            body = await request.body()
            response = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
            if response.status == 401:
                # Said here, without the body: bolt's own notice quotes the form's contents.
                log.warning(
                    "refused a Slack request: bad or stale signature (from %s)",
                    request.client.host if request.client else "unknown",
                )
            return to_starlette_response(response)

    return [Route("/slack/events", slack_events, methods=["POST"])]
