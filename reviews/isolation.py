"""One request's step in a savepoint of the sweep's transaction, so that a request that cannot be
handled (a bug, a damaged snapshot) never holds up everyone else's."""

from __future__ import annotations

import logging
from collections.abc import Callable

from reviews import messages, notify
from reviews.context import Services
from reviews.model import format_reference
from storage.database import UnitOfWork

log = logging.getLogger(__name__)


def isolated(
    uow: UnitOfWork,
    services: Services,
    review_id: int | None,
    step: Callable[[], object],
    *,
    doing: str,
) -> bool:
    """Run `step` (about `review_id`) in a savepoint; False if it failed, and was undone. The
    failure is logged, and the digest channel is told once (per request), so that a person can
    chase that request by hand. `doing` names the step: "escalated" ("RR-0042 could not be
    escalated")."""
    said = len(uow.on_commit)
    try:
        with uow.session.begin_nested():
            step()
    except Exception as error:
        del uow.on_commit[said:]  # what the rolled-back step would have logged
        reference = format_reference(review_id or 0)
        # The type only: a database error's text can carry the request's own words.
        log.error("%s could not be %s (%s); will retry", reference, doing, type(error).__name__)
        notify.to_digest_channel(
            uow,
            services.routes,
            key=f"broken:{review_id}",
            message=messages.Message(
                text=f"{reference} could not be {doing} ({type(error).__name__}); the bot "
                "keeps trying. Make sure the outreach team knows about it."
            ),
            at=services.clock.now(),
            review_id=review_id,
        )
        return False
    return True
