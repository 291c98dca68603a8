"""The remote codec for the Temporal UI and CLI (docs/temporal.md, "Reading encrypted
bookings"): ``POST /api/v1/codec/decode`` and ``/encode`` — also mounted at ``/codec/decode``
and ``/codec/encode``, the path Temporal's docs use (one router, two mounts) — take and
answer the UI's JSON form of payloads
(``{"payloads": [{"metadata": {k: base64}, "data": base64}]}``), decrypted or encrypted with
EVENTLY_TEMPORAL_CODEC_KEYS. Support and admin only (bearer token); the UI's origin is
allowed by EVENTLY_TEMPORAL_CODEC_CORS_ORIGINS (:class:`CodecCors`)."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from api.auth.deps import SupportUser
from api.deps import SettingsDep
from api.problems import problem_responses
from evently.errors import CodecPayloadInvalid
from evently.settings import Settings
from workflows.codec import UnknownCodecKey, codec_from_spec

router = APIRouter(prefix="/codec", tags=["support"])


class CodecPayload(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="values in base64")
    data: str = Field("", description="base64")


class CodecPayloads(BaseModel):
    payloads: list[CodecPayload] = Field(max_length=1000)


@lru_cache(maxsize=4)
def _codec(spec: str | None) -> PayloadCodec | None:
    return codec_from_spec(spec)


def _settings_codec(settings: Settings) -> PayloadCodec | None:
    keys = settings.temporal_codec_keys
    return _codec(keys.get_secret_value() if keys is not None else None)


def _from_json(body: CodecPayloads) -> list[Payload]:
    try:
        return [
            Payload(
                metadata={k: base64.b64decode(v, validate=True) for k, v in p.metadata.items()},
                data=base64.b64decode(p.data, validate=True),
            )
            for p in body.payloads
        ]
    except (binascii.Error, ValueError) as exc:
        raise CodecPayloadInvalid("metadata values and data must be base64") from exc


def _to_json(payloads: list[Payload]) -> CodecPayloads:
    return CodecPayloads(
        payloads=[
            CodecPayload(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


@router.post(
    "/decode",
    response_model=CodecPayloads,
    responses=problem_responses(CodecPayloadInvalid),
    summary="Decrypt payloads for the Temporal UI/CLI (support, admin)",
)
async def decode(body: CodecPayloads, staff: SupportUser, settings: SettingsDep) -> CodecPayloads:
    codec = _settings_codec(settings)
    payloads = _from_json(body)
    if codec is None:  # no encryption configured: nothing to undo
        return _to_json(payloads)
    try:
        return _to_json(await codec.decode(payloads))
    except (UnknownCodecKey, ValueError) as exc:
        raise CodecPayloadInvalid(str(exc)) from exc


@router.post(
    "/encode",
    response_model=CodecPayloads,
    responses=problem_responses(CodecPayloadInvalid),
    summary="Encrypt payloads (the Temporal UI's codec protocol; support, admin)",
)
async def encode(body: CodecPayloads, staff: SupportUser, settings: SettingsDep) -> CodecPayloads:
    codec = _settings_codec(settings)
    payloads = _from_json(body)
    return _to_json(await codec.encode(payloads) if codec is not None else payloads)


#: both mounts of the router (api/app.py): /api/v1/codec/* and /codec/*
CODEC_PATHS = (b"/api/v1/codec/", b"/codec/")
ALLOW_HEADERS = b"Authorization, Content-Type, X-Namespace"


class CodecCors:
    """CORS for the Temporal UI's origin(s) on the codec routes only (the API's own
    EVENTLY_CORS_ORIGINS are the shop's; the UI is not one of them): a preflight from a listed
    origin is answered 204, answers to it say that origin may read them."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.origins = frozenset(o.encode("latin-1") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("raw_path", b"").startswith(CODEC_PATHS):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None or origin not in self.origins:
            await self.app(scope, receive, send)
            return
        cors = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        *cors,
                        (b"access-control-allow-methods", b"POST"),
                        (b"access-control-allow-headers", ALLOW_HEADERS),
                        (b"access-control-max-age", b"600"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in cors if h[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)
