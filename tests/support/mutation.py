"""A pytest plugin for mutation runs only (docs/testing.md, "Mutation score"; not used by CI):
``mutmut`` routes every mutated function through its trampoline, which reads
``os.environ["MUTANT_UNDER_TEST"]``. The strict workflow sandbox forbids that read, so here the
``mutmut`` package is passed through the sandbox; the workflow modules themselves stay fully
sandboxed (re-imported per run), as in every workflow test."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workers.main


def pytest_configure() -> None:
    workers.main.STRICT_RUNNER = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("mutmut")
    )
