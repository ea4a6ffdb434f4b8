"""The embedded Ray starts without the head processes a sweep never uses (API server,
autoscaler monitor, log monitor) and with Ray's minimal dashboard agent: ~2.5 s less to start
and ~1 s less to stop on the 2-core box (bench/demo_overhead.py). A cluster given by
--address is not touched."""

from __future__ import annotations

import pytest

from runner.launch import _LEAN_HEAD_SKIPS, init_ray


@pytest.mark.timeout(120)
def test_embedded_ray_starts_only_what_a_sweep_uses() -> None:
    import ray
    from ray._private import utils as ray_utils
    from ray._private.node import Node

    before = {name: Node.__dict__[name] for name in _LEAN_HEAD_SKIPS}
    deps = ray_utils.get_dashboard_dependency_error
    assert not ray.is_initialized()
    try:
        assert init_ray(None, 1) == 1
        started = set(ray._private.worker._global_node.all_processes)
        assert {"gcs_server", "raylet"} <= started, started
        assert not started & {"dashboard", "monitor", "log_monitor"}, started
        session = ray._private.worker._global_node.get_session_dir_path()
        agents = [line for line in _command_lines()  # this Ray's (other tests run theirs)
                  if "dashboard/agent.py" in line and f"--session-dir={session}" in line]  # fmt: skip
        assert agents and all("--minimal" in line for line in agents), agents

        @ray.remote(num_cpus=1)
        def square(x: int) -> int:
            return x * x

        assert ray.get(square.remote(7)) == 49  # tasks run as before
    finally:
        ray.shutdown()
    # the skips last only while the embedded Ray starts
    assert {name: Node.__dict__[name] for name in _LEAN_HEAD_SKIPS} == before
    assert ray_utils.get_dashboard_dependency_error is deps


def _command_lines() -> list[str]:
    """Command lines of this machine's processes (Linux /proc)."""
    import os

    lines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                lines.append(fh.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines
