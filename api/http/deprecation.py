"""Deprecated aliases: a route kept only for old clients, answering (RFC 9745, RFC 8288)::

    Deprecation: true
    Link: </api/v1/organizations/<org id>/events/<id>>; rel="successor-version"

A router built with ``route_class=DeprecatedAlias`` marks each of its routes ``deprecated`` in
OpenAPI, documents both headers on the success answer, and adds ``Deprecation`` to every answer
the route gives (its problems too). The ``Link`` is added once the endpoint knows the successor:
it takes ``successor: SuccessorDep`` and calls ``successor.organization(org_id)`` as soon as it
knows which organization the resource belongs to (``/admin/...`` → ``/organizations/{org_id}/...``,
the rest of the path unchanged)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

SUCCESSOR = "evently.successor"  # ASGI scope key: the successor's path, once known
ALIAS_SEGMENT = "/admin/"

DEPRECATION_HEADERS: dict[str, dict[str, Any]] = {
    "Deprecation": {
        "description": "`true`: this route is deprecated (RFC 9745); use its successor",
        "required": True,
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Link": {
        "description": "the successor route, `</api/v1/organizations/<org id>/...>; "
        'rel="successor-version"` (RFC 8288)',
        "required": True,
        "schema": {"type": "string"},
    },
}


def successor_path(alias_path: str, organization_id: uuid.UUID) -> str:
    """``/api/v1/admin/events/1`` → ``/api/v1/organizations/<org>/events/1``."""
    head, _, tail = alias_path.partition(ALIAS_SEGMENT)
    return f"{head}/organizations/{organization_id}/{tail}"


class Successor:
    """Where the request's successor lives, once the endpoint knows its organization."""

    def __init__(self, request: Request) -> None:
        self._scope = request.scope

    def organization(self, organization_id: uuid.UUID) -> None:
        self._scope[SUCCESSOR] = successor_path(self._scope["path"], organization_id)


SuccessorDep = Annotated[Successor, Depends()]


class DeprecatedAlias(APIRoute):
    """A route that answers ``Deprecation: true`` (and its successor's ``Link``, when known)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["deprecated"] = True
        responses: dict[int | str, dict[str, Any]] = dict(kwargs.get("responses") or {})
        success = kwargs.get("status_code") or 200
        ok = dict(responses.get(success, {}))
        ok["headers"] = {**ok.get("headers", {}), **DEPRECATION_HEADERS}
        responses[success] = ok
        kwargs["responses"] = responses
        super().__init__(path, endpoint, **kwargs)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_deprecated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Deprecation"] = "true"
                successor = scope.get(SUCCESSOR)
                if successor is not None:
                    headers.append("Link", f'<{successor}>; rel="successor-version"')
            await send(message)

        await super().handle(scope, receive, send_deprecated)
