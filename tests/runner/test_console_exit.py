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


def test_a_reader_that_leaves_does_not_stop_the_sweep(tmp_path):
    """`a2c-sweep run ... | head -1`: the pipe closes after the first line; the sweep must
    train on to the end and exit 0 (it exited 2, "error: Broken pipe", having trained
    nothing)."""
    import json

    sweep = tmp_path / "tiny.yaml"
    sweep.write_text("name: tiny\nenv: CartPole-v0\nnum_envs: 2\nsteps_per_epoch: 64\n"
                     "epochs: 3\nvalue_iters: 2\nseeds: [0, 1]\n")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "run", str(sweep), "--results",
         str(tmp_path / "r")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout.readline().startswith(b"sweep tiny:")
    proc.stdout.close()  # the reader leaves
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    states = [json.loads(p.read_text())["state"]
              for p in (tmp_path / "r" / "tiny" / "runs").glob("*/status.json")]  # fmt: skip
    assert states == ["done", "done"]


def test_closed_standard_streams_keep_the_exit_codes(tmp_path):
    """Started with stdout or stderr closed (`>&-`), Python has sys.stdout None: the exit
    must not crash on it (it did: AttributeError, exit 1 instead of 2)."""
    cli = f"{sys.executable} -m runner.cli"
    for redirect in (">&-", "2>&-"):
        done = subprocess.run(["bash", "-c", f"{cli} status {tmp_path / 'nothing'} {redirect}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2, (redirect, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout
