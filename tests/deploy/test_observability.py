"""deploy/observability: the alert rules and the one-host scrape config pass `promtool` (from
Debian's prometheus package; .ci/run installs it when missing), and every query of the rules
and the provisioned Grafana dashboards names a metric the code really exports: the evently_*
objects of evently/infra/metrics.py, or the Temporal SDK metrics the workers serve."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from evently.infra import metrics

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "deploy" / "observability"
RULES = OBS / "prometheus" / "rules" / "evently.yml"
DASHBOARDS = sorted((OBS / "grafana" / "dashboards").glob("*.json"))

# The Temporal SDK's metrics the dashboards and rules use, as the workers' runtime exports them
# (workers/main.py: counters with _total, durations in seconds with _seconds); Temporal's SDK
# metrics reference lists them. tests/workers/test_main.py scrapes a real worker for some.
TEMPORAL_HISTOGRAMS = {
    "temporal_workflow_task_schedule_to_start_latency_seconds",
    "temporal_activity_schedule_to_start_latency_seconds",
    "temporal_activity_execution_latency_seconds",
    "temporal_workflow_task_execution_latency_seconds",
}
TEMPORAL_SAMPLES = {
    "temporal_activity_execution_failed_total",
    "temporal_workflow_task_execution_failed_total",
    "temporal_workflow_completed_total",
    "temporal_workflow_failed_total",
    "temporal_request_failure_total",
    "temporal_worker_task_slots_available",
    "temporal_sticky_cache_size",
} | {f"{h}_{s}" for h in TEMPORAL_HISTOGRAMS for s in ("bucket", "count", "sum")}

METRIC = re.compile(r"\b((?:evently|temporal)_[a-z0-9_]+)\b")


def evently_samples() -> set[str]:
    """The sample names evently/infra/metrics.py's objects expose."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names |= {f"{value._name}_total"}
        elif isinstance(value, Gauge):
            names.add(value._name)
        elif isinstance(value, Histogram):
            names |= {f"{value._name}_{s}" for s in ("bucket", "count", "sum")}
    assert "evently_reserve_requests_total" in names
    return names


def known() -> set[str]:
    return evently_samples() | TEMPORAL_SAMPLES


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool: apt-get install prometheus (.ci/run does it when missing)"
    return found


def test_alert_rules_pass_promtool() -> None:
    out = subprocess.run(
        [promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_really_refuses_a_broken_rule(tmp_path: Path) -> None:
    """Guards the test above."""
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(\n")
    out = subprocess.run(
        [promtool(), "check", "rules", str(broken)], capture_output=True, timeout=60, check=False
    )
    assert out.returncode != 0


def test_the_one_host_scrape_config_passes_promtool() -> None:
    """prometheus.yml (compose) with its rule files. Debian's promtool is built without the
    Kubernetes service discovery, so prometheus-k8s.yml is checked for shape below."""
    out = subprocess.run(
        [promtool(), "check", "config", str(OBS / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_scrape_configs_find_every_metrics_port() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    one_host = yaml.safe_load((OBS / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in one_host["scrape_configs"]}
    # the API's metrics have a port of their own in compose (EVENTLY_METRICS_PORT's default)
    shared_env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-evently-env"]
    metrics_port = shared_env["EVENTLY_METRICS_PORT"].removesuffix("}").rsplit("-", 1)[-1]
    assert jobs["evently-api"]["static_configs"][0]["targets"] == [f"api:{metrics_port}"]
    (dns,) = jobs["evently-worker"]["dns_sd_configs"]
    workers = {name for name in compose if name.startswith("worker-")}
    assert set(dns["names"]) == workers
    assert dns["port"] == 9464
    for name in workers:
        assert compose[name]["environment"]["EVENTLY_WORKER_METRICS_PORT"] == "9464"

    k8s = yaml.safe_load((OBS / "prometheus" / "prometheus-k8s.yml").read_text())
    assert k8s["rule_files"] == one_host["rule_files"]
    (job,) = k8s["scrape_configs"]
    keep = job["relabel_configs"][0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    for manifest in ("api.yaml", "workers.yaml"):
        docs = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "base" / manifest).read_text())
        for doc in docs:
            if doc["kind"] == "Deployment":
                annotations = doc["spec"]["template"]["metadata"]["annotations"]
                assert annotations["prometheus.io/scrape"] == "true"
                ports = [
                    p["containerPort"]
                    for p in doc["spec"]["template"]["spec"]["containers"][0]["ports"]
                ]
                assert int(annotations["prometheus.io/port"]) in ports


def rule_exprs() -> list[str]:
    data = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in data["groups"] for rule in group["rules"]]


def dashboard_exprs(path: Path) -> list[str]:
    board: dict[str, Any] = json.loads(path.read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_queries_use_exported_metrics(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"].startswith("evently-")
    exprs = dashboard_exprs(path)
    assert exprs
    for expr in exprs:
        names = set(METRIC.findall(expr))
        assert names, expr
        assert sorted(names - known()) == [], expr
    datasource = yaml.safe_load(
        (OBS / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in board["panels"]} == {datasource}


def test_alert_rules_use_exported_metrics() -> None:
    for expr in rule_exprs():
        assert sorted(set(METRIC.findall(expr)) - known()) == [], expr


def test_the_dashboards_cover_what_an_operator_watches() -> None:
    """On-sale, workflows, payments, outboxes: each asks for its signals."""
    every = {p.stem: " ".join(dashboard_exprs(p)) for p in DASHBOARDS}
    assert set(every) == {"onsale", "workflows", "payments", "outbox"}
    for needle in (
        'outcome="held"',
        'outcome="sold_out"',
        "evently_waiting_room_waiting",
        "evently_waiting_room_admitted_total",
        "histogram_quantile(0.99, sum by (le, route)",
    ):
        assert needle in every["onsale"], needle
    for needle in (
        "temporal_workflow_task_schedule_to_start_latency_seconds_bucket",
        "by (le, task_queue)",
        "temporal_activity_execution_failed_total",
    ):
        assert needle in every["workflows"], needle
    for needle in ('outcome="confirmed"', "refunded", "webhook"):
        assert needle in every["payments"], needle
    for needle in ("evently_mails_total", "evently-webhooks", "evently-mail"):
        assert needle in every["outbox"], needle


def test_a_misspelt_metric_would_be_caught() -> None:
    assert "evently_reserve_request_total" not in known()
    assert "temporal_workflow_task_schedule_to_start_latency_bucket" not in known()
