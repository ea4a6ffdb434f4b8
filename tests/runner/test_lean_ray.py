"""The embedded Ray starts without the head processes a sweep never uses (API server,
autoscaler monitor, log monitor): ~1.2 s less to start and ~1 s less to stop on the 2-core
box (bench/demo_overhead.py). A cluster given by --address is not touched."""

from __future__ import annotations

import pytest

from runner.launch import _LEAN_HEAD_SKIPS, init_ray


@pytest.mark.timeout(120)
def test_embedded_ray_starts_only_what_a_sweep_uses() -> None:
    import ray
    from ray._private.node import Node

    before = {name: Node.__dict__[name] for name in _LEAN_HEAD_SKIPS}
    assert not ray.is_initialized()
    try:
        assert init_ray(None, 1) == 1
        started = set(ray._private.worker._global_node.all_processes)
        assert {"gcs_server", "raylet"} <= started, started
        assert not started & {"dashboard", "monitor", "log_monitor"}, started

        @ray.remote(num_cpus=1)
        def square(x: int) -> int:
            return x * x

        assert ray.get(square.remote(7)) == 49  # tasks run as before
    finally:
        ray.shutdown()
    # the skips last only while the embedded Ray starts
    assert {name: Node.__dict__[name] for name in _LEAN_HEAD_SKIPS} == before
