"""Every recorded history (tests/workflows/histories/*.json) replays against today's workflow
code, under the full sandbox, with the production data converter: a change that breaks
determinism fails here (docs/architecture.md, "Changing a workflow safely")."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.histories import HISTORIES
from workers.main import STRICT_RUNNER
from workers.registry import queue_specs
from workflows.codec import CodecKey, EncryptionCodec
from workflows.connection import data_converter

pytestmark = pytest.mark.unit

FILES = sorted(HISTORIES.glob("*.json"))


def test_every_path_of_every_workflow_is_recorded() -> None:
    names = {f.stem for f in FILES}
    expected = {
        "booking-held-confirmed",
        "booking-held-expired",
        "booking-declined-then-paid",
        "booking-cancelled-while-held",
        "booking-cancelled-after-confirmation",
        "booking-late-payment-confirmed",
        "booking-late-payment-refunded",
        "booking-support-release",
        "booking-sold-out",
        "booking-webhook-while-held",
        "waitlist-offer-accept-pay",
        "waitlist-decline-lapse-back-to-public",
        "waitlist-continue-as-new-first-run",
        "waitlist-continue-as-new-last-run",
        "event-cancellation-several-pages",
        "search-sync",
        # since the end-at-confirmation patch (the older ones above must keep replaying)
        "booking-held-confirmed-v2",
        "booking-declined-then-paid-v2",
        "booking-cancelled-after-confirmation-v2",
        "booking-late-payment-confirmed-v2",
        "booking-change-cancel",
        "booking-charge-unanswered",
        "event-cancellation-continued-first-run",
        "event-cancellation-continued-last-run",
        # since the reconcile-unanswered-charges patch
        "booking-charge-unanswered-voided",
        "booking-charge-reconciled",
        "mail-outbox-continued-first-run",
        "mail-outbox-last-run",
        # organizer webhooks (issue 17)
        "webhook-delivery-gave-up",
        "webhook-delivery-retried-delivered",
        "webhook-delivery-gone",
        "webhook-relay",
        # the waiting room's admission (issue 18)
        "queue-admission-continued-first-run",
        "queue-admission-closed",
        # ticket types (issue 15): a partial cancellation, and a reserve of several lines
        "booking-change-lines",
        "booking-held-lines-promo",
        # the periodic jobs run by Temporal Schedules (issue 33)
        "maintenance-check-invariants",
        "maintenance-prune-tokens",
    }
    assert expected <= names, sorted(expected - names)


# payload encryption on (issue 33): histories recorded before the codec carry plain payloads,
# which the codec passes through; they must replay with it as they do without
CODEC = EncryptionCodec([CodecKey("current", b"c" * 32), CodecKey("previous", b"p" * 32)])


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "codec-on"])
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_a_recorded_history_replays(path: Path, encrypted: bool) -> None:
    workflows = sorted(
        {wf for spec in queue_specs().values() for wf in spec.workflows}, key=lambda w: w.__name__
    )
    replayer = Replayer(
        workflows=workflows,
        data_converter=data_converter(CODEC if encrypted else None),
        workflow_runner=STRICT_RUNNER,
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer.replay_workflow(history)  # raises on any non-determinism
