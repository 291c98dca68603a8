"""The codec endpoint's CORS (issue 33): the Temporal UI's origin
(EVENTLY_TEMPORAL_CODEC_CORS_ORIGINS) may call /api/v1/codec/* from the browser, and only
those routes; other origins get nothing. The same routes answer at /codec/* (the path the
issue and Temporal's docs name), with the same auth and CORS."""

from __future__ import annotations

import httpx
import pytest

from evently.infra.resources import Resources
from tests.support.factories import make_account
from tests.support.temporal import AppFactory

UI = "http://127.0.0.1:8233"


@pytest.mark.parametrize("path", ["/api/v1/codec", "/codec"])
async def test_the_temporal_ui_origin_may_call_the_codec(
    resources: Resources, app_factory: AppFactory, path: str
) -> None:
    settings = resources.settings.model_copy(update={"temporal_codec_cors_origins": [UI]})
    app = app_factory(resources, settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        preflight = await http.options(
            f"{path}/decode",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == UI
        assert "X-Namespace" in preflight.headers["access-control-allow-headers"]
        staff = await make_account(resources, role="support")
        payload = {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}
        answer = await http.post(
            f"{path}/decode",
            json={"payloads": [payload]},
            headers=staff.headers | {"Origin": UI, "X-Namespace": "default"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == UI
        assert answer.json() == {"payloads": [payload]}  # plain payloads pass through
        # another origin, or another route: no CORS grant
        other = await http.options(
            f"{path}/decode",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
        # the same auth on both mounts: support and admin only
        payloads = {"payloads": [payload]}
        anonymous = await http.post(f"{path}/decode", json=payloads)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        buyer = await make_account(resources)
        refused = await http.post(f"{path}/encode", json=payloads, headers=buyer.headers)
        assert refused.status_code == 403
        encoded = await http.post(f"{path}/encode", json=payloads, headers=staff.headers)
        assert encoded.status_code == 200
        events = await http.get("/api/v1/events", headers={"Origin": UI})
        assert "access-control-allow-origin" not in events.headers
