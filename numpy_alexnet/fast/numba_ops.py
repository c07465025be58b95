"""The Numba backend's other kernels: LRN, the neurons, the fully connected layers'
products and the momentum update.

Same signatures, shapes and return conventions as the reference kernels
(``layers/normalization.py``, ``layers/activation.py``, ``layers/linear.py``,
``optim.momentum_update``).  The elementwise kernels run ``prange`` over
their output; the products and the update take a share of the columns or
elements per thread, in the pool of ``numba_threads``.  Outputs have the
input's dtype, and scalars are cast to it before use, so float32 stays float32.
"""
from __future__ import annotations

import weakref

import numba
import numpy as np
from numba import prange

from ..backend import reference_op, register
from . import numba_threads

_jit = numba.njit(cache=True, parallel=True, fastmath=False)


# -- local response normalization -----------------------------------------------------
# scale^-beta is the costly part: a float32 pow is a scalar libm call per element
# (unless Numba finds a vector math library), several times the cost of the rest of
# the layer.  For the paper's beta = 0.75, a * s^-0.75 = a / sqrt(s * sqrt(s)): two
# square roots and a division, which vectorize.  Each of those rounds once, so the
# result may differ from the reference's pow in the last bit or two (about 1e-7
# relative in float32); any other beta takes pow.
@_jit
def _lrn_forward(x, half, k, alpha, mbeta, three_quarters, out, scale):
    # x, out, scale: (N, C, H*W); scale = k + alpha * sum over the channel window of x^2.
    N, C, P = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        s = scale[n, c]                               # (P,), a view
        s[:] = 0
        for j in range(max(0, c - half), min(C, c + half + 1)):
            xj = x[n, j]                              # (P,), a view
            for p in range(P):
                v = xj[p]
                s[p] += v * v
        xc, oc = x[n, c], out[n, c]                   # (P,) views
        for p in range(P):
            s[p] = k + alpha * s[p]
        if three_quarters:
            for p in range(P):
                v = s[p]
                oc[p] = xc[p] / np.sqrt(v * np.sqrt(v))   # x * v^-0.75
        else:
            for p in range(P):
                oc[p] = xc[p] * s[p] ** mbeta
    return out, scale


@_jit
def _lrn_backward(dout, x, out, scale, half, mbeta, three_quarters, two_ab, t, dx):
    # All (N, C, H*W).  t = dout * out / scale, then dx = dout * scale^-beta
    # - 2 alpha beta * x * (window sum of t): two passes, each over output planes.
    N, C, P = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        tc, dc, oc, sc = t[n, c], dout[n, c], out[n, c], scale[n, c]   # (P,) views
        for p in range(P):
            tc[p] = dc[p] * oc[p] / sc[p]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        d = dx[n, c]                                  # (P,), a view
        d[:] = 0
        for j in range(max(0, c - half), min(C, c + half + 1)):
            tj = t[n, j]                              # (P,), a view
            for p in range(P):
                d[p] += tj[p]
        dc, sc, xc = dout[n, c], scale[n, c], x[n, c]  # (P,) views
        if three_quarters:
            for p in range(P):
                v = sc[p]
                d[p] = dc[p] / np.sqrt(v * np.sqrt(v)) - two_ab * xc[p] * d[p]
        else:
            for p in range(P):
                d[p] = dc[p] * sc[p] ** mbeta - two_ab * xc[p] * d[p]
    return dx


def lrn_forward(x, n: int, k: float, alpha: float, beta: float):
    """x (N, C, H, W) -> (out, scale), scale = k + alpha * windowed sum of x^2."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    t = x.dtype.type
    x3 = x.reshape(N, C, H * W)                                  # (N, C, P), a view
    out = np.empty_like(x3)
    scale = np.empty_like(x3)
    _lrn_forward(x3, n // 2, t(k), t(alpha), t(-beta), beta == 0.75, out, scale)
    return out.reshape(N, C, H, W), scale.reshape(N, C, H, W)    # (N, C, H, W) views


def lrn_backward(dout, x, out, scale, n: int, k: float, alpha: float, beta: float):
    """da = dout * scale^-beta - 2 alpha beta * x * windowsum(dout * out / scale)."""
    N, C, H, W = x.shape
    t = dout.dtype.type
    flat = [np.ascontiguousarray(a).reshape(N, C, H * W) for a in (dout, x, out, scale)]  # (N, C, P)
    tmp = np.empty_like(flat[0])
    dx = np.empty_like(flat[0])
    _lrn_backward(*flat, n // 2, t(-beta), beta == 0.75, t(2.0 * alpha * beta), tmp, dx)
    return dx.reshape(N, C, H, W)                                # (N, C, H, W), a view


# -- the neurons: one pass each, where NumPy makes two or three ------------------------
@_jit
def _relu_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else 0
    return out


@_jit
def _relu_backward(dout, out, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] if out[i] > 0 else 0
    return dx


@_jit
def _tanh_backward(dout, out, one, dx):
    for i in prange(dout.size):                       # one: 1 in the arrays' dtype (no upcast)
        o = out[i]
        dx[i] = dout[i] * (one - o * o)
    return dx


def relu_forward(x):
    """x -> (max(0, x), state: the output, positive exactly where x was)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _relu_forward(x.reshape(-1), out.reshape(-1))
    return out, out


def relu_backward(dout, out):
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _relu_backward(dout.reshape(-1), out.reshape(-1), dx.reshape(-1))
    return dx


def tanh_forward(x):
    """NumPy's own tanh (vectorized); the state is the output."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, out):
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _tanh_backward(dout.reshape(-1), out.reshape(-1), dout.dtype.type(1), dx.reshape(-1))
    return dx


# -- fully connected layers: the GEMMs shared by the threads ----------------------------
# NumPy's x @ W runs on one core once a convolution has capped BLAS at one thread
# (numba_threads), and AlexNet's fc6 and fc7 GEMMs are the largest outside the
# convolutions (fc6's W is 151 MB).  So each thread takes a share of the output's
# columns and runs a one-thread BLAS GEMM on it.  Every output element is still one
# dot product over the same inputs.  Small layers (Figure-1's fc10) keep the plain
# lines: a share each would cost more than it saves.
SPLIT_ELEMENTS = 1 << 20


def linear_forward(x, W, b):
    """As the reference: x @ W + b, (N, D_out), the columns shared by the threads."""
    if W.size < SPLIT_ELEMENTS:
        return x @ W + b
    out = np.empty((x.shape[0], W.shape[1]), dtype=np.result_type(x, W))

    def work(lo, hi):                                                    # out[:, lo:hi], a view
        np.matmul(x, W[:, lo:hi], out=out[:, lo:hi])
        out[:, lo:hi] += b[lo:hi]

    numba_threads.split(W.shape[1], work)
    return out


def linear_backward(dout, x, W):
    """As the reference: (dx = dout @ W.T, dW = x.T @ dout, db), the products shared by
    the threads by columns, dW written into the array of the step before (``_dW_array``)."""
    dW = _dW_array(W, np.result_type(x, dout))
    if W.size < SPLIT_ELEMENTS:
        np.matmul(x.T, dout, out=dW)
        return dout @ W.T, dW, dout.sum(axis=0)
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x.shape, dtype=np.result_type(dout, W))
    numba_threads.split(W.shape[1], lambda lo, hi: np.matmul(x.T, dout[:, lo:hi], out=dW[:, lo:hi]))
    numba_threads.split(W.shape[0], lambda lo, hi: np.matmul(dout, W[lo:hi].T, out=dx[:, lo:hi]))
    return dx, dW, dout.sum(axis=0)


_DW_ARRAYS: dict = {}       # id(W) -> (a weak reference to W, the array its dW was last written into)


def _dW_array(W, dtype) -> np.ndarray:
    """The array W's last gradient was written into, to be overwritten (a new one the first
    time, or for another dtype).  fc6's dW is 151 MB, and a fresh array that size is fresh
    memory from the OS, zeroed page by page, every step."""
    key = id(W)
    ref, dW = _DW_ARRAYS.get(key, (None, None))
    if ref is None or ref() is not W or dW.dtype != dtype:
        dW = np.empty(W.shape, dtype=dtype)
        ref = weakref.ref(W, lambda _, key=key: _DW_ARRAYS.pop(key, None))
        _DW_ARRAYS[key] = (ref, dW)
    return dW


# -- the optimizer's update ----------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _momentum_update(w, g, v, momentum, decay_lr, lr):
    # w, g, v: flat, one dtype; the scalars are in that dtype too, so every line
    # rounds as the reference's array expression does (Numba does not fuse a
    # multiply and an add into one FMA without fastmath).
    for i in range(w.size):
        vi = v[i] * momentum                          # v *= momentum
        vi = vi - decay_lr * w[i]                     # v -= (weight_decay * lr) * w
        vi = vi - lr * g[i]                           # v -= lr * g
        v[i] = vi
        w[i] = w[i] + vi                              # w += v


def momentum_update(w, g, v, momentum: float, decay_lr: float, lr: float) -> None:
    """As ``optim.momentum_update``, in one pass that reads w, g, v once and writes v
    and w once, a share of the elements per thread.

    The reference's lines make two temporaries and ten passes over memory; for
    AlexNet's 61 million parameters that costs several times this pass.  The result
    is bit for bit the reference's (``tests/test_backends.py``).  Arrays that are not
    contiguous NumPy arrays of one dtype take the reference's lines.
    """
    if not all(type(a) is np.ndarray and a.flags.c_contiguous and a.dtype == w.dtype
               and a.shape == w.shape for a in (w, g, v)):
        return reference_op("momentum_update")(w, g, v, momentum, decay_lr, lr)
    t = w.dtype.type
    w1, g1, v1 = w.reshape(-1), g.reshape(-1), v.reshape(-1)             # (size,) views
    scalars = (t(momentum), t(decay_lr), t(lr))
    if w.size < SPLIT_ELEMENTS:
        _momentum_update(w1, g1, v1, *scalars)
    else:
        numba_threads.split(w.size, lambda lo, hi: _momentum_update(w1[lo:hi], g1[lo:hi],
                                                                   v1[lo:hi], *scalars))


register("numba", lrn_forward=lrn_forward, lrn_backward=lrn_backward,
         relu_forward=relu_forward, relu_backward=relu_backward,
         tanh_forward=tanh_forward, tanh_backward=tanh_backward,
         linear_forward=linear_forward, linear_backward=linear_backward,
         momentum_update=momentum_update)
