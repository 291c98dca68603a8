"""Fixtures of the events suite: one admin and one buyer per module (venues and events made
through the admin API: tests/support/events.py)."""

from __future__ import annotations

import pytest

from evently.infra.resources import Resources
from tests.support.factories import Account, make_account


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


@pytest.fixture(scope="module")
async def buyer(resources: Resources) -> Account:
    return await make_account(resources, "buyer")
