"""Mutation runs, by hand only (docs/testing.md, "Mutation score"; never used by CI).

``mutmut`` (3.x, installed into your own virtualenv only) rewrites every function of a module
into a trampoline that picks the original or one mutant at call time, from
``os.environ["MUTANT_UNDER_TEST"]``. mutmut's own runner then starts (fork or forkserver) one
process per mutant; here that either hung (a forked child inherits the session fixtures' asyncio
loop, pools and Temporal's Rust core) or never got past the clean run. So this module drives the
trampolines itself, with no process per mutant:

1. ``python -m tests.support.mutation generate evently/invariants.py ...`` copies the work tree
   (tracked and untracked-but-not-ignored files) into ``mutants/`` (git-ignored) and writes the
   named modules there with their mutants and trampolines, plus ``mutants/mutants.json``
   (module -> mutant names).
2. ``cd mutants && nice -n 19 timeout 3000 ../.venv/bin/python -m pytest -p tests.support.mutation
   --mutants 'evently.invariants.*' -n 0 -p no:cacheprovider <tests>`` runs in ONE pytest session
   (servers started once): a clean round of the selected tests that also records which tests
   call which mutated function, then, per mutant, only the tests that call its function, with
   the env var set to that mutant, stopping at the first failure (killed), under a per-mutant
   time budget (``--mutant-timeout``; a mutant that runs over is counted ``timeout``, i.e.
   detected, as mutmut does). ``--mutants-sample N --mutants-seed S`` runs a seeded random
   sample. Results: ``--mutants-report`` (JSON) and a summary at the end of the run;
   ``python -m tests.support.mutation show <mutant>`` prints a mutant's diff.

The strict workflow sandbox forbids the trampoline's ``os.environ`` read, so the ``mutmut``
package is passed through it; the workflow modules themselves stay fully sandboxed."""

from __future__ import annotations

import difflib
import fnmatch
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workers.main

OUT = Path("mutants")
INDEX = "mutants.json"


class MutantTimeout(BaseException):
    """Raised in the main thread when a mutant runs over its budget (a hang is detected)."""


def _configure_mutmut() -> None:
    """mutmut reads its settings from setup.cfg; give it what it needs without one."""
    from mutmut import configuration

    overrides: dict[str, Any] = {"source_paths": ["evently", "workflows"]}
    configuration._config_reader = lambda: lambda key, default: overrides.get(key, default)  # type: ignore[assignment,misc]
    configuration.reset_config()


def generate(paths: list[str]) -> dict[str, list[str]]:
    """Copy the work tree into ``mutants/`` with ``paths`` mutated; return module -> mutants."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    _configure_mutmut()
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    if OUT.exists():
        shutil.rmtree(OUT)
    for raw in files:
        name = raw.decode()
        if not name or not Path(name).is_file():
            continue
        (OUT / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(name, OUT / name)
    index: dict[str, list[str]] = {}
    for path in paths:
        mutated = mutate_file_contents(path, Path(path).read_text())
        (OUT / path).write_text(mutated.code)
        module = path.removesuffix(".py").replace("/", ".")
        index[module] = [get_mutant_name(Path(path), m) for m in mutated.mutant_names]
        (OUT / (path + ".orig")).write_text(Path(path).read_text())
    (OUT / INDEX).write_text(json.dumps(index, indent=1))
    # for subprocesses of the tests (the CLI): they inherit MUTANT_UNDER_TEST, and mutmut's
    # own hit recorder ("stats") reads this
    (OUT / "setup.cfg").write_text("[mutmut]\nsource_paths =\n    evently\n    workflows\n")
    return index


def show(mutant: str) -> str:
    """The unified diff of one mutant against its original function."""
    import ast

    module, _, name = mutant.rpartition(".")
    base = Path(".") if Path(INDEX).exists() else OUT
    path = base / (module.replace(".", "/") + ".py")
    source = path.read_text()
    lines = source.splitlines()
    # each function's lines, sliced from one split of the source (ast.get_source_segment
    # splits the whole file per call: minutes on a module of thousands of mutants)
    funcs: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            funcs[node.name] = lines[node.lineno - 1 : node.end_lineno]
    # a method's mutants keep their class in the name (xǁClassǁmethod__mutmut_3)
    short = name if name in funcs else name.rsplit("ǁ", 1)[-1]
    orig_short = short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    mutated = [line.replace(short, orig_short, 1) for line in funcs[short]]
    return "\n".join(
        difflib.unified_diff(funcs[orig_short], mutated, orig_short, mutant, lineterm="")
    )


# --- the pytest plugin ------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mutation", "mutation runs (tests/support/mutation.py)")
    group.addoption(
        "--mutants", default=None, help="fnmatch patterns of the mutants to run, comma-separated"
    )
    group.addoption("--mutants-sample", type=int, default=0, help="seeded random sample size")
    group.addoption("--mutants-seed", type=int, default=35)
    group.addoption("--mutant-timeout", type=float, default=120.0, help="seconds per mutant")
    group.addoption("--mutants-report", default=None, help="JSON file for the results")


def pytest_configure(config: pytest.Config) -> None:
    workers.main.STRICT_RUNNER = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("mutmut")
    )


class _KeepChain:
    """A stand-in "next item" for pytest's teardown: keep the session, module and class
    fixtures of ``item`` (only its function fixtures end); the driver tears down whatever the
    real next item does not share before it runs it."""

    def __init__(self, item: pytest.Item) -> None:
        self._chain = item.listchain()[:-1]

    def listchain(self) -> list[Any]:
        return self._chain


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise MutantTimeout()


def _run(item: pytest.Item, log: bool = False) -> bool:
    """Run one item (its setup, call and teardown); True when it passed."""
    from _pytest.runner import runtestprotocol

    item.session._setupstate.teardown_exact(item)
    reports = runtestprotocol(item, log=log, nextitem=_KeepChain(item))  # type: ignore[arg-type]
    return all(not r.failed for r in reports)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    pattern = session.config.getoption("--mutants")
    if not pattern:
        return None
    from mutmut.mutation import trampoline

    items = list(session.items)
    index: dict[str, list[str]] = json.loads(Path(INDEX).read_text())
    patterns = pattern.split(",")
    mutants = [
        m for names in index.values() for m in names if any(fnmatch.fnmatch(m, p) for p in patterns)
    ]
    sample = session.config.getoption("--mutants-sample")
    if sample and sample < len(mutants):
        mutants = sorted(
            random.Random(session.config.getoption("--mutants-seed")).sample(mutants, sample)
        )
    budget = session.config.getoption("--mutant-timeout")
    tw = session.config.get_terminal_writer()

    # clean round: every item passes, and which items call which mutated function
    hits: set[str] = set()
    trampoline.record_trampoline_hit = lambda name, caller=None: hits.add(name)  # type: ignore[assignment]
    trampoline.set_mutant_under_test("stats")
    callers: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        hits.clear()
        if not _run(item, log=True):
            tw.line(f"clean run failed: {item.nodeid}; no mutant run", red=True)
            session.testsfailed += 1
            return True
        for name in hits:
            callers[name].append(i)
    results: dict[str, dict[str, Any]] = {}
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for n, mutant in enumerate(mutants, 1):
            function = mutant.rsplit("__mutmut_", 1)[0]
            selected = callers.get(function, [])
            started = time.monotonic()
            status, killer = ("no tests", None) if not selected else ("survived", None)
            trampoline.set_mutant_under_test(mutant)
            deadline = started + budget
            for i in selected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    status = "timeout"
                    break
                signal.setitimer(signal.ITIMER_REAL, remaining)
                try:
                    passed = _run(items[i])
                except MutantTimeout:
                    passed = False
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                if time.monotonic() >= deadline:
                    status, killer = "timeout", items[i].nodeid
                    break
                if not passed:
                    status, killer = "killed", items[i].nodeid
                    break
            trampoline.set_mutant_under_test("")
            results[mutant] = {
                "status": status,
                "killer": killer,
                "tests": len(selected),
                "seconds": round(time.monotonic() - started, 2),
            }
            tw.line(f"[{n}/{len(mutants)}] {status:9} {mutant} ({results[mutant]['seconds']} s)")
            _save(session, results)
        # a control: with no mutant active every test still passes, or the kills above are
        # suspect (a mutant's run may have left state behind that fails the tests by itself)
        for item in items:
            if not _run(item):
                tw.line(f"control run failed: {item.nodeid}; the kills are suspect", red=True)
                session.testsfailed += 1
                break
    finally:
        signal.signal(signal.SIGALRM, previous)
        trampoline.set_mutant_under_test("")
        session._setupstate.teardown_exact(None)
    _summary(tw, results)
    return True


def _save(session: pytest.Session, results: dict[str, dict[str, Any]]) -> None:
    path = session.config.getoption("--mutants-report")
    if path:
        Path(path).write_text(json.dumps(results, indent=1, ensure_ascii=False))


def _summary(tw: Any, results: dict[str, dict[str, Any]]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for r in results.values():
        counts[r["status"]] += 1
    detected = counts["killed"] + counts["timeout"]
    covered = detected + counts["survived"]
    tw.line("")
    tw.line(f"mutants: {len(results)}; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if covered:
        tw.line(
            f"score (killed+timeout)/(covered): {detected}/{covered} = {detected / covered:.0%}"
        )
    for name, r in sorted(results.items()):
        if r["status"] == "survived":
            tw.line(f"survived: {name}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "generate":
        for module, names in generate(args).items():
            print(f"{module}: {len(names)} mutants")
    elif command == "show":
        for name in args:
            print(show(name))
    else:
        raise SystemExit(f"unknown command {command}")
