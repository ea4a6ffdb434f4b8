"""Import boundaries: analysis never imports ray or torch at module level (gif loads torch
lazily), and analysis.cli imports the standard library only (a fast `a2c-sweep status`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)


def imported_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_analysis_imports_neither_ray_nor_torch() -> None:
    modules = imported_after(
        "import analysis, analysis.load, analysis.aggregate, analysis.plots, "
        "analysis.refine, analysis.gif, analysis.cli"
    )
    assert "analysis.plots" in modules and "pandas" in modules  # the imports did happen
    assert not {m for m in modules if m.split(".")[0] in ("ray", "torch")}


def test_cli_module_imports_stdlib_only() -> None:
    modules = imported_after("import analysis.cli")
    heavy = {"pandas", "numpy", "matplotlib", "scipy", "torch", "ray", "rich", "yaml"}
    assert not {m for m in modules if m.split(".")[0] in heavy}
