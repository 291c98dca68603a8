"""Roles: buyers are refused on admin and support routes; staff accounts only from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi import APIRouter
from sqlalchemy import func, select

from api.auth.deps import AdminUser, CurrentUser, SupportUser
from evently.db.models import User, Venue
from evently.infra.resources import Resources
from evently.settings import Settings
from tests.api.auth.helpers import AUTH, PASSWORD, assert_problem, bearer
from tests.conftest import AppFactory
from tests.factories import make_account, unique_email

VENUE = {"name": "Role Hall", "address": "Main st 1", "city": "RoleCity", "capacity": 100}


async def test_buyer_on_a_real_admin_route_is_403_and_changes_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources, "buyer")
    name = f"Role Hall {buyer.id}"
    r = await client.post(
        "/api/v1/admin/venues", json={**VENUE, "name": name}, headers=buyer.headers
    )
    assert_problem(r, 403, "forbidden")
    r = await client.post("/api/v1/admin/venues", json={**VENUE, "name": name})
    assert_problem(r, 401)
    async with resources.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Venue).where(Venue.name == name)
        )
    assert count == 0
    admin = await make_account(resources, "admin")
    r = await client.post(
        "/api/v1/admin/venues", json={**VENUE, "name": name}, headers=admin.headers
    )
    assert r.status_code == 201, r.text


async def test_role_dependencies_matrix(resources: Resources, app_factory: AppFactory) -> None:
    """CurrentUser, SupportUser and AdminUser on a probe app built on the real dependencies."""
    probe = APIRouter()

    @probe.get("/probe/any")
    async def any_user(user: CurrentUser) -> dict[str, str]:
        return {"role": user.role}

    @probe.get("/probe/support")
    async def support(user: SupportUser) -> dict[str, str]:
        return {"role": user.role}

    @probe.get("/probe/admin")
    async def admin(user: AdminUser) -> dict[str, str]:
        return {"role": user.role}

    app = app_factory(resources)
    app.include_router(probe)
    allowed = {
        "buyer": {"any"},
        "support": {"any", "support"},
        "admin": {"any", "support", "admin"},
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for role, ok in allowed.items():
            account = await make_account(resources, role)
            for route in ("any", "support", "admin"):
                r = await c.get(f"/probe/{route}", headers=account.headers)
                if route in ok:
                    assert r.status_code == 200, (role, route, r.text)
                    assert r.json() == {"role": role}
                else:
                    body = assert_problem(r, 403, "forbidden")
                    assert route in body["detail"]
        for route in ("any", "support", "admin"):
            assert_problem(await c.get(f"/probe/{route}"), 401, "unauthorized")


async def test_role_changes_take_effect_without_a_new_token(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """The role is read from the database per request, not trusted from the token."""
    admin = await make_account(resources, "admin")
    async with resources.sessionmaker() as session, session.begin():
        user = await session.get(User, admin.id)
        assert user is not None
        user.role = "buyer"
    r = await client.post("/api/v1/admin/venues", json=VENUE, headers=admin.headers)
    assert_problem(r, 403, "forbidden")


def _evently(settings: Settings, cwd: Path, *args: str, **env_extra: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
    env["EVENTLY_DATABASE_URL"] = settings.database_url or ""
    env.update(env_extra)
    evently = Path(sys.executable).parent / "evently"
    out = subprocess.run([str(evently), *args], cwd=cwd, env=env, capture_output=True, text=True)
    return out.returncode, out.stderr


async def test_migrate_makes_the_bootstrap_admin_and_never_promotes_a_buyer(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    email = unique_email("boot")
    code, err = _evently(
        settings,
        tmp_path,
        "migrate",
        EVENTLY_BOOTSTRAP_ADMIN_EMAIL=email,
        EVENTLY_BOOTSTRAP_ADMIN_PASSWORD=PASSWORD,
    )
    assert code == 0, err
    assert "created" in err
    r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "admin"

    # someone registered the intended admin address publicly first: refuse, do not promote
    squatted = unique_email("squat")
    r = await client.post(f"{AUTH}/register", json={"email": squatted, "password": PASSWORD})
    assert r.status_code == 202, r.text
    code, err = _evently(
        settings,
        tmp_path,
        "migrate",
        EVENTLY_BOOTSTRAP_ADMIN_EMAIL=squatted,
        EVENTLY_BOOTSTRAP_ADMIN_PASSWORD=PASSWORD,
    )
    assert code == 1
    assert "non-admin" in err
    r = await client.post(f"{AUTH}/login", json={"email": squatted, "password": PASSWORD})
    assert r.json()["user"]["role"] == "buyer"


async def test_cli_makes_staff_accounts_that_log_in_with_their_role(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    email = unique_email("Staff")
    args = ["users", "create", "--email", email, "--password", PASSWORD, "--role", "support"]
    code, err = _evently(settings, tmp_path, *args)
    assert code == 0, err
    assert "created support" in err
    r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "support"
    me = await client.get("/api/v1/users/profile", headers=bearer(r.json()["access_token"]))
    assert me.json()["role"] == "support"
