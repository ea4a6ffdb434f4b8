"""The ``a2c-sweep`` command ends without the interpreter's teardown (runner.cli.console_main):
its exit code, its output and what atexit handlers do must be those of a normal exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _console(args: list[str], tmp_path: Path, before: str = "") -> tuple[int, str, str]:
    """Run console_main(args) in a fresh interpreter after ``before``; stdout goes to a file
    (block-buffered, as when a user redirects it)."""
    code = f"import sys\n{before}\nfrom runner.cli import console_main\nsys.argv[1:] = {args!r}\n"
    out = tmp_path / "stdout.txt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with open(out, "w") as fh:
        done = subprocess.run([sys.executable, "-c", code + "console_main()\n"], cwd=ROOT,
                              stdout=fh, stderr=subprocess.PIPE, text=True, timeout=120,
                              env=env)  # fmt: skip
    return done.returncode, out.read_text(), done.stderr


def _dry_run(tmp_path: Path) -> list[str]:
    return ["run", str(ROOT / "sweeps" / "demo.yaml"), "--dry-run", "--results",
            str(tmp_path / "r")]  # fmt: skip


def test_buffered_output_and_exit_codes_survive(tmp_path):
    """Text still in a block buffer at the end (here printed by an atexit handler) is
    written (os._exit alone would drop it); bad input keeps its exit code 2."""
    before = "import atexit\natexit.register(lambda: print('unflushed', end=''))"
    code, out, err = _console(_dry_run(tmp_path), tmp_path, before)
    assert code == 0, err
    assert "16 runs" in out and out.endswith("unflushed")
    code, _, err = _console(["run", str(tmp_path / "missing.yaml")], tmp_path)
    assert code == 2 and "cannot read" in err


def test_atexit_handlers_run(tmp_path):
    """Handlers registered by libraries (or a user's code) still run before the exit."""
    marker = tmp_path / "ran"
    before = f"import atexit\natexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))"
    code, _, err = _console(_dry_run(tmp_path), tmp_path, before)
    assert code == 0, err
    assert marker.read_text() == "yes"
