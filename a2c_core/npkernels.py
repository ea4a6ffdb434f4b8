"""numpy's own float32 kernels, callable from compiled (numba) code.

The swing-up rollout computes the Gaussian policy's mean, ``tanh(x W1 + b1) W2 + b2`` in
float32, once per step. The published swing-up results were made with numpy doing that
(``np.matmul`` -> OpenBLAS ``sgemm`` / ``sgemv``, ``np.tanh`` -> numpy's SIMD float32 loop),
and a compiled loop of its own would round differently (numpy's float32 tanh is not the C
library's ``tanhf``; OpenBLAS's ``sgemv`` sums in its own order). So the fused swing-up
rollout (:mod:`a2c_core.fused`) calls the very same machine code numpy calls:

- ``sgemm`` / ``sgemv``: the CBLAS entry points of the OpenBLAS library numpy is linked
  against (``numpy.libs/libscipy_openblas64_*.so`` in the PyPI wheels), called with the
  arguments numpy's matmul passes (row-major, no transpose, alpha 1, beta 0);
- ``tanh``: the float32 inner loop numpy's ``np.tanh`` ufunc dispatches to on this CPU, read
  from the ufunc's loop table.

Their addresses are given to LLVM under fixed names (``llvmlite.binding.add_symbol``), so the
kernels that call them stay in numba's on-disk cache. Nothing here is trusted blindly:
:func:`problem` says why the kernels are unusable (no such library, a loop table that does
not read back ``np.tanh``'s results bit for bit), and :func:`check_forward` compares a whole
compiled forward pass with numpy's on the caller's shapes; the engine falls back to numpy
(the generic rollout) whenever either fails. Both are checked once per process.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

try:
    import llvmlite.binding as llvm
    import numba
    from numba import types

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover - then problem() says so
    _HAVE_NUMBA = False

ROW_MAJOR, NO_TRANS = 101, 111
_UFUNC_FUNCTIONS_OFFSET = 32  # PyUFuncObject: PyObject_HEAD (16), 4 ints (16), functions
_UFUNC_NTYPES_OFFSET = 48  # ... functions (8), data (8), ntypes


def _ufunc_loop(ufunc: np.ufunc, signature: str) -> int:
    """Address of ``ufunc``'s inner loop for ``signature`` (e.g. "f->f"), or 0."""
    if ctypes.c_int.from_address(id(ufunc) + _UFUNC_NTYPES_OFFSET).value != ufunc.ntypes:
        return 0  # not the struct layout this reads
    funcs = ctypes.c_void_p.from_address(id(ufunc) + _UFUNC_FUNCTIONS_OFFSET).value
    if not funcs:
        return 0
    return ctypes.c_void_p.from_address(funcs + 8 * ufunc.types.index(signature)).value or 0


def _openblas() -> ctypes.CDLL | None:
    """numpy's own OpenBLAS (already loaded by numpy: dlopen returns the same library)."""
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    found = sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so")))
    if len(found) != 1:
        return None
    try:
        lib = ctypes.CDLL(found[0])
        lib.scipy_cblas_sgemm64_, lib.scipy_cblas_sgemv64_  # noqa: B018 - both must exist
    except (OSError, AttributeError):
        return None
    return lib


def _tanh_reads_back(address: int) -> bool:
    """Does the loop at ``address`` compute np.tanh's float32 results, bit for bit?"""
    loop = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p)(address)  # fmt: skip
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4099) * rng.choice([0.01, 1.0, 5.0, 20.0], 4099)).astype(np.float32)
    x[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30]
    out = np.empty_like(x)
    args = (ctypes.c_void_p * 2)(x.ctypes.data, out.ctypes.data)
    loop(args, (ctypes.c_int64 * 1)(x.size), (ctypes.c_int64 * 2)(4, 4), None)
    return bool(np.array_equal(out.view(np.int32), np.tanh(x).view(np.int32)))


def _resolve() -> str | None:
    if not _HAVE_NUMBA:
        return "numba is not installed"
    lib = _openblas()
    if lib is None:
        return "numpy's OpenBLAS (numpy.libs/libscipy_openblas64_*.so) was not found"
    tanh = _ufunc_loop(np.tanh, "f->f")
    if not tanh or not _tanh_reads_back(tanh):
        return "numpy's float32 tanh loop could not be read back exactly"
    llvm.add_symbol("a2c_np_sgemm", ctypes.cast(lib.scipy_cblas_sgemm64_, ctypes.c_void_p).value)
    llvm.add_symbol("a2c_np_sgemv", ctypes.cast(lib.scipy_cblas_sgemv64_, ctypes.c_void_p).value)
    llvm.add_symbol("a2c_np_tanh_f32", tanh)
    return None


_PROBLEM = _resolve()


def problem() -> str | None:
    """Why the kernels cannot be used in this process (None: they can)."""
    return _PROBLEM


if _HAVE_NUMBA:
    _i32, _i64, _f32 = types.int32, types.int64, types.float32
    # pointers travel as int64 (same registers in the C calling convention)
    _sgemm = types.ExternalFunction("a2c_np_sgemm", types.void(
        _i32, _i32, _i32, _i64, _i64, _i64, _f32, _i64, _i64, _i64, _i64, _f32, _i64, _i64))  # fmt: skip
    _sgemv = types.ExternalFunction("a2c_np_sgemv", types.void(
        _i32, _i32, _i64, _i64, _f32, _i64, _i64, _i64, _i64, _f32, _i64, _i64))  # fmt: skip
    _tanh = types.ExternalFunction("a2c_np_tanh_f32", types.void(_i64, _i64, _i64, _i64))

    @numba.njit(cache=True, nogil=True)
    def tanh_layer(x, w, b, z, h, call):
        """h = np.tanh(np.matmul(x, w) + b) for one run, as numpy computes it: x [M, D],
        w [D, H], b [H], z / h [M, H] (all C-contiguous float32; z is scratch). ``call``:
        int64 [5] scratch for the ufunc loop's arguments."""
        m, d = x.shape
        n = w.shape[1]
        _sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, d, np.float32(1.0), x.ctypes.data, d,
               w.ctypes.data, n, np.float32(0.0), z.ctypes.data, n)  # fmt: skip
        for i in range(m):
            for j in range(n):
                z[i, j] = z[i, j] + b[j]
        call[0] = z.ctypes.data  # char *args[2]
        call[1] = h.ctypes.data
        call[2] = m * n  # npy_intp dimensions[1]
        call[3] = 4  # npy_intp steps[2]
        call[4] = 4
        _tanh(call.ctypes.data, call.ctypes.data + 16, call.ctypes.data + 24, 0)

    @numba.njit(cache=True, nogil=True)
    def linear_out1(h, w, b, out):
        """out = np.matmul(h, w) + b for one output column, as numpy computes it (sgemv):
        h [M, H], w [H, 1], b [1], out [M] (C-contiguous float32)."""
        m, n = h.shape
        _sgemv(ROW_MAJOR, NO_TRANS, m, n, np.float32(1.0), h.ctypes.data, n, w.ctypes.data, 1,
               np.float32(0.0), out.ctypes.data, 1)  # fmt: skip
        for i in range(m):
            out[i] = out[i] + b[0]


def check_forward(policy, rows: int, chunk: int, seed: int = 0) -> bool:
    """Do the compiled kernels compute what numpy computes, bit for bit, here? For random
    parameters and observations: the hidden activations of ``chunk``-row pieces (the
    rollout's per-run steps) equal numpy's on one ``rows``-row batch (what the policy update
    computes), and the means of ``chunk``-row pieces equal numpy's on the same pieces (the
    generic rollout's ``np.matmul``). ``chunk`` >= 2 (numpy takes another BLAS routine for
    one row)."""
    rng = np.random.default_rng(seed)
    params = policy.init_params(rng)
    for k in params:
        params[k] = params[k] * np.float32(4.0)  # spread the pre-activations
    x = (rng.standard_normal((rows, policy.obs_dim)) * 3.0).astype(np.float32)
    inputs = policy.net.forward(params, x)[1]
    width = params["W1"].shape[1]
    h = np.empty((rows, width), np.float32)
    z = np.empty((chunk, width), np.float32)
    out = np.empty(rows, np.float32)
    call = np.zeros(5, np.int64)
    same = True
    for lo in range(0, rows, chunk):
        hi = min(lo + chunk, rows)
        tanh_layer(x[lo:hi], params["W1"], params["b1"], z[: hi - lo], h[lo:hi], call)
        if lo < 64 * chunk and hi - lo == chunk:  # the rollout's shape: numpy on the piece
            linear_out1(h[lo:hi], params["W2"], params["b2"], out[lo:hi])
            want = policy.net.forward(params, x[lo:hi])[0][:, 0]
            same &= bool(np.array_equal(out[lo:hi].view(np.int32), want.view(np.int32)))
    return same and bool(np.array_equal(h.view(np.int32), inputs[1].view(np.int32)))
