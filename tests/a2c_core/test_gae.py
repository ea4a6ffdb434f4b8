"""GAE and discounted returns against hand-computed and brute-force answers."""

import numpy as np
import pytest

from a2c_core.gae import compute_gae, discounted_returns


def brute_force_gae(r, v, nv, term, end, gamma, lam):
    """Sum over k of (gamma lam)^k delta_{t+k}, stopping after the step where the episode ends."""
    T, N = r.shape
    delta = r + gamma * (1 - term) * nv - v
    out = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total, coef = 0.0, 1.0
            for k in range(t, T):
                total += coef * delta[k, n]
                if end[k, n]:
                    break
                coef *= gamma * lam
            out[t, n] = total
    return out


def random_batch(rng, T=30, N=5):
    r = rng.normal(size=(T, N))
    v = rng.normal(size=(T, N))
    nv = rng.normal(size=(T, N))
    end = rng.random((T, N)) < 0.15
    term = end & (rng.random((T, N)) < 0.5)
    return r, v, nv, term, end


@pytest.mark.parametrize("gamma", [0.0, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_matches_brute_force(gamma, lam):
    rng = np.random.default_rng(int(gamma * 100 + lam * 10))
    r, v, nv, term, end = random_batch(rng)
    got = compute_gae(r, v, nv, term, end, gamma, lam)
    np.testing.assert_allclose(got, brute_force_gae(r, v, nv, term, end, gamma, lam), atol=1e-10)


def test_lambda_zero_is_one_step_td_error():
    rng = np.random.default_rng(1)
    r, v, nv, term, end = random_batch(rng)
    got = compute_gae(r, v, nv, term, end, 0.97, 0.0)
    np.testing.assert_allclose(got, r + 0.97 * (1 - term) * nv - v)


def test_lambda_one_is_discounted_return_minus_value():
    rng = np.random.default_rng(2)
    r, v, nv, term, end = random_batch(rng)
    # consistent inputs: inside an episode the successor's value is the next row's value
    nv[:-1] = np.where(end[:-1], nv[:-1], v[1:])
    got = compute_gae(r, v, nv, term, end, 0.9, 1.0)
    ret = discounted_returns(r, nv, term, end, 0.9)
    np.testing.assert_allclose(got, ret - v, atol=1e-12)


def test_hand_computed_episode_with_truncation_and_termination():
    # one env, T = 4: steps 0-1 form an episode that is truncated at t=1, steps 2-3 one that
    # terminates at t=3.
    r = np.array([[1.0], [2.0], [3.0], [4.0]])
    v = np.array([[0.5], [0.25], [1.0], [2.0]])
    nv = np.array([[0.25], [10.0], [2.0], [99.0]])  # nv[1] = V(final obs of truncated ep)
    term = np.array([[False], [False], [False], [True]])
    end = np.array([[False], [True], [False], [True]])
    g = 0.5
    ret = discounted_returns(r, nv, term, end, g)
    # truncated: bootstrap from V(final obs) = 10; terminated: no bootstrap (99 ignored)
    np.testing.assert_allclose(ret[:, 0], [1 + g * (2 + g * 10), 2 + g * 10, 3 + g * 4, 4])
    adv = compute_gae(r, v, nv, term, end, g, 1.0)
    np.testing.assert_allclose(adv[:, 0], ret[:, 0] - v[:, 0])


def test_last_step_bootstrapped_exactly_once():
    r = np.array([[1.0], [1.0]])
    nv = np.array([[0.0], [5.0]])  # V(s_T) = 5
    none = np.zeros((2, 1), bool)
    ret = discounted_returns(r, nv, none, none, 0.9)
    np.testing.assert_allclose(ret[:, 0], [1 + 0.9 * (1 + 0.9 * 5), 1 + 0.9 * 5])
    adv = compute_gae(r, np.zeros((2, 1)), nv, none, none, 0.9, 0.0)
    np.testing.assert_allclose(adv[:, 0], [1.0, 1 + 0.9 * 5])


def test_nothing_leaks_across_episode_end():
    rng = np.random.default_rng(3)
    r, v, nv, term, end = random_batch(rng, T=20, N=1)
    end[:] = False
    end[9] = True
    base = compute_gae(r, v, nv, term, end, 0.99, 0.95)
    r2, v2, nv2 = r.copy(), v.copy(), nv.copy()
    r2[10:] += 100.0
    v2[10:] -= 50.0
    nv2[10:] += 7.0
    moved = compute_gae(r2, v2, nv2, term, end, 0.99, 0.95)
    np.testing.assert_array_equal(base[:10], moved[:10])
    assert not np.allclose(base[10:], moved[10:])


def test_dummy_rows_do_not_affect_valid_rows():
    """A NEXT_STEP dummy transition follows an episode end and is itself marked as an end:
    whatever numbers it carries, the other rows' advantages and returns are unchanged."""
    rng = np.random.default_rng(4)
    r, v, nv, term, end = random_batch(rng, T=12, N=1)
    end[:] = False
    term[:] = False
    term[4] = end[4] = True
    end[5] = True  # the dummy row
    base_a = compute_gae(r, v, nv, term, end, 0.9, 0.8)
    base_r = discounted_returns(r, nv, term, end, 0.9)
    r[5], v[5], nv[5] = 1e6, -1e6, 3e5
    a = compute_gae(r, v, nv, term, end, 0.9, 0.8)
    ret = discounted_returns(r, nv, term, end, 0.9)
    keep = np.arange(12) != 5
    np.testing.assert_array_equal(a[keep], base_a[keep])
    np.testing.assert_array_equal(ret[keep], base_r[keep])


def test_per_column_gamma_lambda_equals_separate_calls():
    rng = np.random.default_rng(5)
    r, v, nv, term, end = random_batch(rng, T=25, N=4)
    gammas = np.array([0.9, 0.99, 0.5, 1.0])
    lams = np.array([0.95, 0.0, 1.0, 0.7])
    joint = compute_gae(r, v, nv, term, end, gammas, lams)
    for n in range(4):
        col = slice(n, n + 1)
        alone = compute_gae(r[:, col], v[:, col], nv[:, col], term[:, col], end[:, col],
                            gammas[n], lams[n])  # fmt: skip
        np.testing.assert_array_equal(joint[:, col], alone)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_loops_equal_numpy_loops_bitwise(monkeypatch, dtype):
    """The engine uses numba-compiled copies of the two loops; they must not change a bit."""
    import a2c_core.gae as gae

    assert gae._HAVE_NUMBA
    rng = np.random.default_rng(7)
    r, v, nv, term, end = random_batch(rng, T=200, N=24)
    r, v, nv = (a.astype(dtype) for a in (r, v, nv))
    gammas = rng.uniform(0.9, 1.0, 24).astype(dtype)
    lams = rng.uniform(0.0, 1.0, 24).astype(dtype)
    fast = (compute_gae(r, v, nv, term, end, gammas, lams),
            discounted_returns(r, nv, term, end, gammas))  # fmt: skip
    monkeypatch.setattr(gae, "_HAVE_NUMBA", False)
    slow = (compute_gae(r, v, nv, term, end, gammas, lams),
            discounted_returns(r, nv, term, end, gammas))  # fmt: skip
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
