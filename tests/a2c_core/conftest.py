"""Shared checks of the a2c_core tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def _state_round_trip(a, make_b: Callable, actions: np.ndarray, split: int) -> list[dict]:
    """Step pack env ``a`` (reset here) through ``actions[:split]``, save every run's state
    and generator, and step on to the end; a fresh pack from ``make_b()`` given those states
    must then reproduce every step field for field. Returns the saved states (``a`` has moved
    on past them)."""
    a.reset()
    for t in range(split):
        a.step(actions[t])
    saved = [a.get_state(p) for p in range(a.num_runs)]
    rng_states = [g.bit_generator.state for g in a.rngs]
    obs_before = a.current_obs().copy()
    cont = [a.step(actions[t]) for t in range(split, len(actions))]

    b = make_b()
    b.reset()
    for g, st in zip(b.rngs, rng_states, strict=True):
        g.bit_generator.state = st
    for p, state in enumerate(saved):
        b.set_state(p, state)
    np.testing.assert_array_equal(b.current_obs(), obs_before)
    for t, sa in zip(range(split, len(actions)), cont, strict=True):
        sb = b.step(actions[t])
        for field in sa._fields:
            np.testing.assert_array_equal(getattr(sa, field), getattr(sb, field))
    return saved


@pytest.fixture
def state_round_trip() -> Callable:
    return _state_round_trip
