"""An import-linter contract for what its graph cannot see: submodules of external packages
(grimp squashes ``temporalio.client`` into ``temporalio``). Used by ``lint-imports``
(pyproject.toml, [tool.importlinter]) in .ci/run."""

from __future__ import annotations

import ast
import importlib.util
from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.helpers import module_expressions_to_modules


def _imports_of(path: str) -> set[str]:
    """Every module a file imports by name (``import a.b``, ``from a.b import c`` → a.b, a.b.c)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


class ProtectedSubmoduleContract(Contract):
    """Only ``allowed_importers`` (packages) may import ``protected_module`` directly."""

    type_name = "protected_submodule"

    protected_module = fields.StringField()
    allowed_importers = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        protected: str = self.protected_module  # type: ignore[assignment]
        allowed = {
            m.name
            for m in module_expressions_to_modules(graph, self.allowed_importers)  # type: ignore[arg-type]
        }
        violations: list[str] = []
        for module in sorted(graph.modules):
            if graph.is_module_squashed(module):
                continue  # an external package
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue
            if any(module == a or module.startswith(f"{a}.") for a in allowed):
                continue
            imported = _imports_of(spec.origin)
            if protected in imported or any(i.startswith(f"{protected}.") for i in imported):
                violations.append(module)
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        meta: dict[str, Any] = check.metadata
        for module in meta["violations"]:
            output.print_error(f"{module} imports {self.protected_module}")
            output.new_line()
