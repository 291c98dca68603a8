"""The name resolver the webhook routes check destinations with (issue 28): the system's by
default; tests override :func:`webhook_resolver` with a stub (``app.dependency_overrides``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from evently.webhooks import targets


def webhook_resolver() -> targets.Resolver:
    return targets.system_resolver


ResolverDep = Annotated[targets.Resolver, Depends(webhook_resolver)]
