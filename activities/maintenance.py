"""The periodic jobs' activities (workflows/maintenance/): prune expired refresh tokens (and
expired password-reset / email-verification tokens, issue 32),
check the booking invariants (a violation is a log line and a metric to alert on)."""

from __future__ import annotations

import logging

from prometheus_client import Gauge
from temporalio import activity

from evently import account_tokens, tokens
from evently.db.session import make_sessionmaker
from evently.infra.resources import Resources
from evently.invariants import check
from workflows.connection import TemporalClient
from workflows.maintenance.contract import ACTIVITY_CHECK, ACTIVITY_PRUNE_TOKENS

log = logging.getLogger("evently.maintenance")

INVARIANT_VIOLATIONS = Gauge(
    "evently_invariant_violations",
    "booking invariant violations found by the last scheduled check (alert on > 0)",
)


class MaintenanceActivities:
    def __init__(self, res: Resources, temporal: TemporalClient) -> None:
        self.res = res

    @activity.defn(name=ACTIVITY_PRUNE_TOKENS)
    async def prune_tokens(self) -> int:
        async with make_sessionmaker(self.res.engine)() as session, session.begin():
            deleted = await tokens.prune_expired(session, grace_days=1)
            mailed = await account_tokens.prune_expired(session, grace_days=1)
        log.info("pruned %d expired refresh tokens, %d expired account tokens", deleted, mailed)
        return deleted

    @activity.defn(name=ACTIVITY_CHECK)
    async def check_invariants(self) -> int:
        async with self.res.engine.connect() as conn:
            found = await check(conn, None, grace_seconds=60)
        INVARIANT_VIOLATIONS.set(len(found))
        for violation in found:
            log.error("invariant violated: %s", violation)
        return len(found)
