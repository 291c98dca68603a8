"""docker-compose.yml: valid Compose, started in the right order, nothing unauthenticated
published, every secret documented. No Docker engine is needed: the file is checked against
the Compose specification's JSON schema (vendored by check-jsonschema, read offline) and its
dependency graph is asserted here."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from evently.settings import Settings
from evently.tickets.signing import generate_keypair, private_key_b64
from workflows.common import QUEUES, SEARCH_ATTRIBUTE_TYPES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

TEST_TICKET_KEY = private_key_b64(generate_keypair()[0])
APP_SERVICES = {
    "api",
    "worker-booking",
    "worker-search",
    "worker-payments",
    "worker-mail",
    "worker-webhooks",
}
WORKERS = {name for name in APP_SERVICES if name.startswith("worker-")}
# published only on loopback: no login of their own
LOOPBACK_ONLY = {"temporal-ui"}
NEVER_PUBLISHED = {"elasticsearch", "postgres", "redis", "temporal"}
SEARCH_ATTRIBUTE_NAMES = {"EventId", "UserId", "BookingStatus", "OrganizationId"}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; $$ escapes a $
VARIABLE = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def depends(name: str) -> dict[str, str]:
    """{dependency: condition} of a service (the short list form means service_started)."""
    raw = services()[name].get("depends_on", {})
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {dep: spec.get("condition", "service_started") for dep, spec in raw.items()}


def one_shot(name: str) -> bool:
    return services()[name].get("restart") == "no"


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation, enough for this file (defaults, required values, $$)."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        present = env.get(name)
        if op in {":-", "-"}:
            use_default = present is None or (op == ":-" and present == "")
            return arg if use_default else str(present)
        if op in {":?", "?"} and (present is None or (op == ":?" and present == "")):
            raise KeyError(f"{name}: {arg}")
        return present or ""

    return VARIABLE.sub(substitute, value).replace("$$", "$")


def variables_used() -> dict[str, str | None]:
    """Every variable the compose file reads → its operator (':?' marks a required one)."""
    used: dict[str, str | None] = {}
    for match in VARIABLE.finditer(COMPOSE.read_text()):
        if used.get(match["name"]) not in {":?", "?"}:
            used[match["name"]] = match["op"]
    return used


def env_example() -> dict[str, tuple[str, bool]]:
    """NAME → (value, commented out) for every `NAME=value` or `# NAME=value` line."""
    found: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.fullmatch(r"(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)", line.strip())
        if m:
            found[m["name"]] = (m["value"], m["comment"] is not None)
    return found


# ---- the Compose specification ----------------------------------------------------------


@cache
def compose_spec() -> dict[str, Any]:
    path = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def spec_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_spec()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_follows_the_compose_specification() -> None:
    assert spec_errors(compose()) == []


def test_the_schema_really_checks_dependency_conditions() -> None:
    """Guards the test above: a schema that accepted anything would pass it too."""
    broken = {"services": {"a": {"image": "x", "depends_on": {"b": {"condition": "when_ready"}}}}}
    assert spec_errors(broken)


# ---- start order --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_services_wait_for_migrations_temporal_setup_and_healthy_servers(name: str) -> None:
    deps = depends(name)
    assert deps["migrate"] == "service_completed_successfully"
    assert deps["temporal-setup"] == "service_completed_successfully"
    for server in ("postgres", "redis", "temporal", "elasticsearch"):
        assert deps[server] == "service_healthy", server


def test_migrations_wait_for_postgres() -> None:
    assert depends("migrate") == {"postgres": "service_healthy"}
    assert services()["migrate"]["command"] == ["evently", "migrate"]


def test_temporal_starts_on_a_schema_set_up_by_admin_tools() -> None:
    s = services()
    assert s["temporal"]["image"].startswith("temporalio/server:")
    assert depends("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert s["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert depends("temporal-schema") == {"temporal-db-role": "service_completed_successfully"}
    assert depends("temporal-db-role") == {"postgres": "service_healthy"}
    # same release for the server and the tools that prepared its schema
    assert s["temporal"]["image"].split(":")[1] == s["temporal-schema"]["image"].split(":")[1]
    assert not [n for n, svc in s.items() if "auto-setup" in str(svc.get("image"))]


def test_schema_setup_covers_both_databases() -> None:
    """deploy/temporal/setup-schema.sh runs temporal-sql-tool's three steps on both databases
    with the schema directories admin-tools ships (no Docker here to run it)."""
    script = (ROOT / "deploy/temporal/setup-schema.sh").read_text()
    assert "for db in temporal temporal_visibility" in script
    assert "SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12" in script
    for versioned in ("temporal/versioned", "visibility/versioned"):
        assert f"$SCHEMA_ROOT/{versioned}" in script
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert f'--db "$db" {step}' in script
    env = services()["temporal-schema"]["environment"]
    server = services()["temporal"]["environment"]
    assert env["POSTGRES_USER"] == server["POSTGRES_USER"] == "temporal"
    assert env["SQL_PASSWORD"] == server["POSTGRES_PWD"]
    assert env["POSTGRES_SEEDS"] == server["POSTGRES_SEEDS"] == "postgres"


def test_search_attributes_are_created_once_temporal_is_healthy() -> None:
    assert depends("temporal-setup") == {"temporal": "service_healthy"}
    setup = services()["temporal-setup"]
    assert setup["image"] == services()["temporal-schema"]["image"]
    names = set(setup["environment"]["EVENTLY_SEARCH_ATTRIBUTES"].split())
    assert names == SEARCH_ATTRIBUTE_NAMES
    # everything the embedded dev server registers, production registers too
    assert set(SEARCH_ATTRIBUTE_TYPES) <= names
    assert all(kind == "Keyword" for kind in SEARCH_ATTRIBUTE_TYPES.values())
    mounted = {v.split(":")[1]: v.split(":")[0] for v in setup["volumes"]}
    assert mounted[setup["entrypoint"][-1]] == "./deploy/temporal/setup-namespace.sh"


def test_one_worker_service_per_task_queue_pool() -> None:
    pools = {}
    for name in WORKERS:
        command = services()[name]["command"]
        pools[command[command.index("--queues") + 1]] = name
    assert set(pools) == set(QUEUES)


def test_dependencies_exist_and_their_conditions_can_be_met() -> None:
    for name in services():
        for dep, condition in depends(name).items():
            assert dep in services(), f"{name} depends on unknown {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in services()[dep], f"{name} waits for {dep}'s health"
            if condition == "service_completed_successfully":
                assert one_shot(dep), f"{name} waits for {dep} to exit, which restarts"


def test_the_start_order_has_no_cycle() -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " → ".join((*path, name))
        if name not in done:
            for dep in depends(name):
                visit(dep, (*path, name))
            done.add(name)

    for name in services():
        visit(name, ())


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if one_shot(name):
            assert "healthcheck" not in service, name
        else:
            assert service.get("restart") == "unless-stopped", name
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


# ---- exposure -------------------------------------------------------------------------------


def published(name: str) -> list[str]:
    ports = services()[name].get("ports", [])
    defaults: dict[str, str] = {}
    return [
        interpolate(str(p) if not isinstance(p, dict) else json.dumps(p), defaults) for p in ports
    ]


def test_only_the_api_and_loopback_ui_are_published() -> None:
    for name in services():
        ports = published(name)
        if name in NEVER_PUBLISHED:
            assert ports == [], f"{name} must not be published"
        elif name in LOOPBACK_ONLY:
            assert ports, name
            assert all(p.startswith("127.0.0.1:") for p in ports), f"{name}: {ports}"
        elif name != "api":
            assert ports == [], f"{name} publishes {ports}"
    # the API defaults to loopback too (a TLS proxy in front); opt in to 0.0.0.0
    assert all(p.startswith("127.0.0.1:") for p in published("api"))


# ---- secrets and production settings ---------------------------------------------------------


def setting_names() -> set[str]:
    return {f"EVENTLY_{name.upper()}" for name in Settings.model_fields}


# `evently dev` only (the embedded servers), or passed on the command line by compose
DEV_OR_COMMAND_LINE = {
    "EVENTLY_STATE_DIR",
    "EVENTLY_TEMPORAL_PORT",
    "EVENTLY_TEMPORAL_UI_PORT",
    "EVENTLY_DEV_SMTP_PORT",
    "EVENTLY_API_HOST",
    "EVENTLY_API_PORT",
    "EVENTLY_WORKER_QUEUES",
}


def test_every_variable_is_documented_in_env_example() -> None:
    documented = env_example()
    used = variables_used()
    assert sorted(set(used) - set(documented)) == []
    # the rest reach the app services through env_file: Evently settings only
    assert sorted(set(documented) - set(used) - setting_names()) == [], "documented but unused"
    for name, op in used.items():
        value, commented = documented[name]
        if op in {":?", "?"}:
            # a required secret: present, and empty so a copied file refuses to start
            assert (value, commented) == ("", False), name
        else:
            assert commented, f"{name} has a default: show it as a commented line"


def test_env_example_as_copied_refuses_to_start() -> None:
    documented = {
        name: value for name, (value, commented) in env_example().items() if not commented
    }
    with pytest.raises(KeyError):
        interpolate(COMPOSE.read_text(), documented)


def fake_env() -> dict[str, str]:
    env = {
        name: f"{name.lower()}-0123456789abcdef0123456789abcdef"
        for name, op in variables_used().items()
        if op in {":?", "?"}
    }
    # a real key: the production validator refuses an unreadable one like the dev key
    env["EVENTLY_TICKET_SIGNING_KEY"] = TEST_TICKET_KEY
    return env


def app_environment(name: str) -> dict[str, str]:
    env = services()[name]["environment"]
    assert isinstance(env, dict), f"{name}: environment as a mapping"
    return {key: interpolate(str(value), fake_env()) for key, value in env.items()}


@pytest.mark.parametrize("name", sorted(APP_SERVICES | {"migrate"}))
def test_app_services_run_in_production_with_stripe(name: str) -> None:
    env = app_environment(name)
    assert env["EVENTLY_ENV"] == "production"
    assert env["EVENTLY_PAYMENT_PROVIDER"] == "stripe"
    for secret in (
        "EVENTLY_STRIPE_SECRET_KEY",
        "EVENTLY_STRIPE_WEBHOOK_SECRET",
        "EVENTLY_JWT_SECRET",
    ):
        assert env[secret] == fake_env()[secret], f"{secret} must come from .env"
    # the production validator accepts what the compose file hands over
    settings = Settings.model_validate(
        {
            key.removeprefix("EVENTLY_").lower(): v
            for key, v in env.items()
            if key.startswith("EVENTLY_")
        }
    )
    assert (settings.env, settings.payment_provider) == ("production", "stripe")
    assert settings.stripe_api_base is None  # the real Stripe, never an emulator
    # the generic webhook (simulated provider) is off: no secret of its own to hand out
    assert not settings.generic_webhook_enabled
    assert "EVENTLY_PAYMENT_WEBHOOK_SECRET" not in env
    assert not settings.stripe_return_url  # unset unless .env sets it


# ---- every production setting reachable (issue 33) -------------------------------------------


def fixed_by_compose() -> set[str]:
    return set(compose()["x-evently-env"]) | {
        "EVENTLY_WORKER_METRICS_PORT",
        "EVENTLY_WORKER_GRACEFUL_SHUTDOWN_SECONDS",
    }


@pytest.mark.parametrize("name", sorted(APP_SERVICES | {"migrate"}))
def test_app_services_read_env_file(name: str) -> None:
    assert services()[name]["env_file"] == ".env"


def test_every_setting_is_reachable_from_env() -> None:
    """Fixed by the compose file, or documented in .env.example (which env_file passes on)."""
    reachable = fixed_by_compose() | set(env_example()) | DEV_OR_COMMAND_LINE
    assert sorted(setting_names() - reachable) == []
    # a line .env.example shows must not be one the compose file silently overrides
    overridden = {n for n in set(env_example()) & fixed_by_compose() if n not in variables_used()}
    assert sorted(overridden) == []


# ---- resources, logs, secrets on the command line ----------------------------------------------


@pytest.mark.parametrize("name", sorted(compose()["services"]))
def test_every_service_has_limits_and_rotated_logs(name: str) -> None:
    service = services()[name]
    assert service["logging"]["driver"] == "json-file"
    assert set(service["logging"]["options"]) == {"max-size", "max-file"}
    limits = service["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0
    assert limits["memory"]


def test_the_redis_password_is_never_on_a_command_line() -> None:
    redis = services()["redis"]
    command = " ".join(redis["command"])
    assert "requirepass" in command
    assert "--requirepass" not in command
    # the compose file hands the shell a literal $REDIS_PASSWORD ($$ escapes it), expanded by
    # the shell's printf builtin into a file: no process has it in its argv
    assert "${REDIS_PASSWORD" not in command
    assert '"$REDIS_PASSWORD"' in interpolate(command, fake_env())
    assert "umask 077" in command
    assert command.rstrip().endswith("redis-server /data/redis.conf")
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")


# ---- the connection budget ---------------------------------------------------------------------


def test_pools_fit_postgres_max_connections() -> None:
    env = app_environment("api")
    settings = Settings.model_validate(
        {
            key.removeprefix("EVENTLY_").lower(): v
            for key, v in env.items()
            if key.startswith("EVENTLY_")
        }
    )
    postgres = interpolate(" ".join(services()["postgres"]["command"]), fake_env())
    declared = int(re.search(r"max_connections=(\d+)", postgres)[1])  # type: ignore[index]
    assert settings.postgres_max_connections == declared
    # the API's --workers is the declared API process count
    api = [interpolate(str(part), fake_env()) for part in services()["api"]["command"]]
    assert int(api[api.index("--workers") + 1]) == settings.api_processes
    # one process per worker service, with room to scale each pool
    assert settings.worker_processes >= len(WORKERS)
    # Temporal's pools (history + visibility) and the superuser reserve fit in the reserve
    temporal = services()["temporal"]["environment"]
    assert settings.postgres_reserved_connections >= 2 * int(temporal["SQL_MAX_CONNS"]) + 3
    assert settings.database_connections_at_most <= declared


def test_the_budget_check_refuses_the_old_pools() -> None:
    """The issue's numbers: pools of 20 + 20 would be refused against this Postgres."""
    env = {
        key.removeprefix("EVENTLY_").lower(): v
        for key, v in app_environment("api").items()
        if key.startswith("EVENTLY_")
    }
    env.update(database_pool_size="20", database_max_overflow="20")
    with pytest.raises(ValueError, match="connection budget exceeded"):
        Settings.model_validate(env)
