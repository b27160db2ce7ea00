"""The local shell trial shows texts to the bleep holder where its chat is: in the terminal."""

from __future__ import annotations

import pytest

from tests.support.process import bot_environment
from tests.support.terminal import PtyBot
from tests.test_shell import raise_family_request

pytestmark = pytest.mark.slow

POLICY = """\
[[levels]]
after = "0s"
notify = ["outreach"]
sms = true
repeat_every = "24h"  # beyond the test: the ladder must repeat
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""


def test_a_level_that_texts_prints_the_text_to_the_bleep_holder(tmp_path):
    policy = tmp_path / "escalation.toml"
    policy.write_text(POLICY)
    env = bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", ESCALATION_POLICY=str(policy))
    shell = PtyBot(env=env)
    try:
        shell.expect("> ")
        raise_family_request(shell)
        shell.expect("[text message to +447700900000] ")
        assert " ".join(shell.expect("shell now.").split()) == (
            "RR-0001 STANDARD rapid review, Ward 7 (Acute Medicine) bed 12: NOT YET "
            "ACKNOWLEDGED. Acknowledge in the rapidreview shell now."
        )
    finally:
        shell.stop()
