"""Numba backend: Conv2D -> ReLU (or Tanh) -> pooling run as one fused step.

In the reference, each of the three layers makes its own pass over the
convolution's output (N, F, Ho, Wo): the convolution writes it (plus the
bias), ReLU reads it and writes a second array, the pool reads that and
writes its output; the backward makes the same passes the other way.  On the
Figure-1 net these passes, over arrays far larger than the cache, cost about
as much as the convolutions' unfolding (docs/performance.md).

Here the convolution goes a chunk of the batch at a time anyway
(``numba_ops.conv_forward_chunks``), so each chunk's product W @ cols,
still in cache, is finished at once by one kernel: bias, ReLU and pooling,
written straight to the pool's output.  The convolution's output and the
ReLU's output are never stored.  Backward, one kernel turns each chunk of
the pool's dout into the convolution's dout, in the layout its GEMMs read,
and sums it for db (``numba_ops.conv_backward_chunks``).

Every kernel computes the same float32 values as the reference ops it
replaces, in the same order, where that order is the reference's (see each
docstring); tests/test_backends.py checks the fused step against the three
reference layers.  What is kept for the backward:

* max pooling: the window offset of each maximum (int32, as
  ``numba_ops.maxpool_forward`` keeps it) and the pooled output.  ReLU's
  mask is not needed: the maximum of a window of ReLU outputs is > 0
  exactly when the element it routes to was > 0.
* average pooling: ReLU's mask (bool, the size of the convolution's output),
  since every element of a window gets a share of its gradient.
* Tanh (Figure 1's other neuron), either pool: Tanh's output, as the Tanh
  layer keeps it.  The bias and NumPy's tanh are applied to the chunk in
  place (NumPy's tanh is vectorized, and rounds as the reference does), then
  the pool's kernel; backward, one kernel does the pool's and the neuron's.

Where no pool follows a ReLU (AlexNet's conv1-conv4, each followed by LRN or
another convolution), :class:`ConvReLU` fuses the convolution and the ReLU
alone, the same way; it leaves both layers the state their own forwards keep.

``fuse(layers)`` is what ``Sequential`` calls (through ``get_ops('numba').fuse``)
to find the runs.  A fused forward must be followed by a fused backward (as
``Sequential`` does): the state lives in a :class:`FusedState` in the neuron
layer's cache (ReLU or Tanh), whose own backward refuses, and a fused
backward after layers ran one by one says so rather than read their caches.
"""
from __future__ import annotations

import numba
import numpy as np

from ..layers import AvgPool2D, Conv2D, MaxPool2D, ReLU, Tanh
from ..layers.base import LayerInputError, conv_output_size
from .numba_ops import (_maxpool3_plane, _maxpool3_scratch, conv_backward_chunks,
                        conv_forward_chunks, sum64)

_kernel = numba.njit(cache=True, nogil=True)


# -- forward: bias + ReLU + pool on one chunk of W @ cols --------------------------------
@_kernel
def _bias_relu_maxpool(prod, b, kh, kw, stride, zero, out, arg):
    """out = maxpool(relu(prod + b)), arg = offset i*KW + j of each window's maximum.

    prod: (F, m, Ho, Wo), a chunk of W @ cols without the bias (the GEMM's
    layout); b: (F,); out, arg: (m, F, Hq, Wq).  Equals, value for value,
    ``conv2d_forward``'s ``+ b``, ``relu_forward`` and ``maxpool_forward``:
    one float32 add, max(0, v), a running maximum with strict >, so ties go
    to the first maximum in row-major window order.
    """
    F, m = prod.shape[0], prod.shape[1]
    Hq, Wq = out.shape[2], out.shape[3]
    for f in range(F):
        bf = b[f]
        for n in range(m):
            plane = prod[f, n]                          # (Ho, Wo), a view
            for y in range(Hq):
                for xq in range(Wq):
                    y0, x0 = y * stride, xq * stride
                    best = zero
                    where = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = plane[y0 + i, x0 + j] + bf
                            if v > best:                # relu(v) > best; relu(first) = 0 >= zero
                                best = v
                                where = i * kw + j
                    out[n, f, y, xq] = best
                    arg[n, f, y, xq] = where
    return out


@_kernel
def _maxpool3(prod, b, relu, stride, zero, out, arg):
    """out, arg as :func:`_bias_relu_maxpool` (``relu`` True) or :func:`_maxpool_chunk`
    of prod + b (False), for 3 x 3 windows, the pool of every net here.

    The same values and offsets, plane by plane, in passes that the compiler
    vectorizes (``numba_ops._maxpool3_plane``; 3x faster on the Figure-1
    net's conv1: the one-pass kernels branch on every comparison, and the data
    decide those branches).
    """
    F, m, Ho, Wo = prod.shape
    scratch = _maxpool3_scratch(Ho, Wo, out.dtype)
    for f in range(F):
        for n in range(m):
            _maxpool3_plane(prod[f, n].ravel(), b[f], relu, zero, Wo, stride, out[n, f], arg[n, f],
                            *scratch)
    return out


@_kernel
def _bias_relu_avgpool(prod, b, kh, kw, stride, size, zero, out, mask):
    """out = avgpool(relu(prod + b)), mask = prod + b > 0 (ReLU's state).

    prod: (F, m, Ho, Wo) as in :func:`_bias_relu_maxpool`; out: (m, F, Hq, Wq);
    mask: (m, F, Ho, Wo) bool.  Equals ``+ b``, ``relu_forward`` and
    ``avgpool_forward``: the window summed in the reference's order (the
    first element, then the others in row-major order), then divided by size.
    """
    F, m, Ho, Wo = prod.shape
    Hq, Wq = out.shape[2], out.shape[3]
    for f in range(F):
        bf = b[f]
        for n in range(m):
            plane = prod[f, n]                          # (Ho, Wo), a view
            for y in range(Ho):
                for x in range(Wo):
                    v = plane[y, x] + bf
                    mask[n, f, y, x] = v > 0
                    plane[y, x] = v if v > 0 else zero  # relu(prod + b), in place, in cache
            for y in range(Hq):
                for xq in range(Wq):
                    y0, x0 = y * stride, xq * stride
                    acc = plane[y0, x0]
                    for i in range(kh):
                        for j in range(kw):
                            if i or j:
                                acc += plane[y0 + i, x0 + j]
                    out[n, f, y, xq] = acc / size
    return out


@_kernel
def _avgpool3(prod, b, relu, stride, size, zero, out, mask):
    """out = avgpool(relu(prod + b)), mask = prod + b > 0 (``relu`` True, as
    :func:`_bias_relu_avgpool`), or out = avgpool(prod) (False, as
    :func:`_avgpool_chunk`; b and mask unused), for 3 x 3 windows.

    The same values: each window's nine elements are summed in the reference's
    row-major order, then divided by size.  Faster (2x on the Figure-1 net)
    because the sum is worked out at every column x, one contiguous loop
    without branches that the compiler vectorizes, and the windows' own
    columns x = xq * stride are then picked out of it.
    """
    F, m, Ho, Wo = prod.shape
    Hq, Wq = out.shape[2], out.shape[3]
    Wx = Wo - 2                                         # windows may start at x = 0 .. Wo-3
    win = np.empty(Wx, dtype=out.dtype)                 # one row of windows, every column
    for f in range(F):
        bf = b[f]
        for n in range(m):
            plane = prod[f, n]                          # (Ho, Wo), a view
            if relu:
                mk = mask[n, f]                         # (Ho, Wo), a view
                for y in range(Ho):
                    r, mr = plane[y], mk[y]             # (Wo,) views
                    for x in range(Wo):
                        v = r[x] + bf
                        mr[x] = v > zero
                        r[x] = v if v > zero else zero  # relu(prod + b), in place, in cache
            o = out[n, f]                               # (Hq, Wq), a view
            for yq in range(Hq):
                r0, r1, r2 = plane[yq * stride], plane[yq * stride + 1], plane[yq * stride + 2]
                for x in range(Wx):
                    win[x] = (r0[x] + r0[x + 1] + r0[x + 2] + r1[x] + r1[x + 1] + r1[x + 2]
                              + r2[x] + r2[x + 1] + r2[x + 2]) / size
                orow = o[yq]
                for xq in range(Wq):
                    orow[xq] = win[xq * stride]
    return out


# -- backward: pool backward + ReLU backward into one chunk of the conv's dout -----------
@_kernel
def _window_deltas(kh, kw, Wo):
    """How far window offset a = i*kw + j lies from the window's start in a flat
    plane of rows Wo long: i*Wo + j, as a table (a division and a remainder per
    window would cost more than the rest of a pool's backward)."""
    delta = np.empty(kh * kw, dtype=np.int64)
    for a in range(kh * kw):
        delta[a] = (a // kw) * Wo + a % kw
    return delta


@_kernel
def _maxpool_relu_backward(dout, arg, pooled, kh, kw, stride, zero, dch, db):
    """dch = relu_backward(maxpool_backward(dout)), and db += its sums (float64).

    dout, arg, pooled: (m, F, Hq, Wq), the pool's; dch: (F, m, Ho, Wo), the
    convolution's dout for this chunk in its GEMM's layout (zeroed here);
    db: (F,) float64.  Each window adds its dout at its maximum, as
    ``numba_ops.maxpool_backward`` does (overlapping windows add up), but
    only where the maximum is > 0: exactly where ReLU's mask lets it through.
    Elsewhere it adds 0 (x + 0 == x) rather than branch on the data.
    """
    m, F, Hq, Wq = dout.shape
    Wo = dch.shape[3]
    delta = _window_deltas(kh, kw, Wo)
    for f in range(F):
        acc = 0.0
        for n in range(m):
            plane = dch[f, n].ravel()                   # (Ho*Wo,), a view
            plane[:] = 0
            for y in range(Hq):
                d, a, p = dout[n, f, y], arg[n, f, y], pooled[n, f, y]   # (Wq,) views
                for xq in range(Wq):
                    g = d[xq]
                    plane[(y * Wo + xq) * stride + delta[a[xq]]] += g if p[xq] > zero else zero
            acc += sum64(plane)
        db[f] += acc
    return dch


@_kernel
def _spread(d, kh, kw, stride, size, share, plane):
    """plane = ``avgpool_backward`` of one plane d (Hq, Wq): share = d / size,
    once per window as the reference divides, added at every offset, offsets
    outermost as in the reference.  share: (Hq, Wq) scratch."""
    Hq, Wq = d.shape
    plane[:] = 0
    flat_d, flat_share = d.ravel(), share.ravel()      # (Hq*Wq,) views
    for q in range(Hq * Wq):
        flat_share[q] = flat_d[q] / size
    for i in range(kh):
        for j in range(kw):
            for y in range(Hq):
                row, srow = plane[y * stride + i], share[y]      # (Wo,), (Wq,) views
                for xq in range(Wq):
                    row[xq * stride + j] += srow[xq]
    return plane


@_kernel
def _avgpool_relu_backward(dout, mask, kh, kw, stride, size, zero, dch, db):
    """dch = relu_backward(avgpool_backward(dout)), and db += its sums (float64).

    dout: (m, F, Hq, Wq); mask: (m, F, Ho, Wo); dch: (F, m, Ho, Wo), written
    here; db: (F,) float64.  The pool's backward as :func:`_spread`, then the
    mask, as a select (no branch on the data).
    """
    m, F, Hq, Wq = dout.shape
    Ho, Wo = dch.shape[2], dch.shape[3]
    share = np.empty((Hq, Wq), dtype=dch.dtype)
    for f in range(F):
        acc = 0.0
        for n in range(m):
            plane = _spread(dout[n, f], kh, kw, stride, size, share, dch[f, n]).ravel()
            mk = mask[n, f].ravel()                     # (Ho*Wo,) views, one loop
            for p in range(Ho * Wo):
                v = plane[p]
                plane[p] = v if mk[p] else zero
            acc += sum64(plane)
        db[f] += acc
    return dch


# -- tanh: the neuron applied in place, then the pool; backward the other way round -------
@_kernel
def _maxpool_chunk(a, kh, kw, stride, out, arg):
    """out, arg = ``numba_ops.maxpool_forward`` of a (F, m, Ho, Wo) into (m, F, Hq, Wq)."""
    F, m = a.shape[0], a.shape[1]
    Hq, Wq = out.shape[2], out.shape[3]
    for f in range(F):
        for n in range(m):
            plane = a[f, n]                             # (Ho, Wo), a view
            for y in range(Hq):
                for xq in range(Wq):
                    y0, x0 = y * stride, xq * stride
                    best = plane[y0, x0]
                    where = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = plane[y0 + i, x0 + j]
                            if v > best:                # strict: ties keep the first maximum
                                best = v
                                where = i * kw + j
                    out[n, f, y, xq] = best
                    arg[n, f, y, xq] = where
    return out


@_kernel
def _avgpool_chunk(a, kh, kw, stride, size, out):
    """out = ``numba_ops.avgpool_forward`` of a (F, m, Ho, Wo) into (m, F, Hq, Wq)."""
    F, m = a.shape[0], a.shape[1]
    Hq, Wq = out.shape[2], out.shape[3]
    for f in range(F):
        for n in range(m):
            plane = a[f, n]                             # (Ho, Wo), a view
            for y in range(Hq):
                for xq in range(Wq):
                    y0, x0 = y * stride, xq * stride
                    acc = plane[y0, x0]
                    for i in range(kh):
                        for j in range(kw):
                            if i or j:
                                acc += plane[y0 + i, x0 + j]
                    out[n, f, y, xq] = acc / size
    return out


@_kernel
def _pool_tanh_backward(dout, arg, tout, is_max, kh, kw, stride, size, one, dch, db):
    """dch = tanh_backward(pool_backward(dout)), and db += its sums (float64).

    dout, arg: (m, F, Hq, Wq) (arg unused for average pooling); tout: (m, F,
    Ho, Wo), Tanh's output; dch: (F, m, Ho, Wo), written here.  The pool's
    backward as ``numba_ops.maxpool_backward`` (window order) or
    :func:`_spread`, then dch * (1 - tout^2) as ``tanh_backward``.
    """
    m, F, Hq, Wq = dout.shape
    Ho, Wo = dch.shape[2], dch.shape[3]
    delta = _window_deltas(kh, kw, Wo)
    share = np.empty((Hq, Wq), dtype=dch.dtype)
    for f in range(F):
        acc = 0.0
        for n in range(m):
            plane = dch[f, n]                           # (Ho, Wo), a view
            if is_max:
                flat = plane.ravel()                    # (Ho*Wo,), a view
                flat[:] = 0
                for y in range(Hq):
                    d, a = dout[n, f, y], arg[n, f, y]  # (Wq,) views
                    for xq in range(Wq):
                        flat[(y * Wo + xq) * stride + delta[a[xq]]] += d[xq]
            else:
                _spread(dout[n, f], kh, kw, stride, size, share, plane)
            t = tout[n, f]                              # (Ho, Wo), a view
            for y in range(Ho):
                for x in range(Wo):
                    o = t[y, x]
                    plane[y, x] = plane[y, x] * (one - o * o)
            acc += sum64(plane)
        db[f] += acc
    return dch


# -- the fused step ----------------------------------------------------------------------
def _conv_backward(conv: Conv2D, input_grad: bool, Ho: int, Wo: int, prologue):
    """The convolution's dW and db into its ``grads``, and dx (or None), from the
    chunks of its dout that ``prologue`` writes (``numba_ops.conv_backward_chunks``)."""
    (x,) = conv.cache
    dx, conv.grads["W"], conv.grads["b"] = conv_backward_chunks(
        x, conv.params["W"], conv.stride, conv.padding, conv.groups, input_grad, Ho, Wo, prologue)
    return dx


class _FusedStep:
    """What every fused step shares: a backward without the input's gradient."""

    def param_backward(self, dout) -> None:
        """Only dW and db, as ``Conv2D.param_backward``."""
        self.backward(dout, input_grad=False)


class FusedState:
    """What a fused forward keeps for its backward (see the module docstring)."""

    def __init__(self, pool_state, neuron_state, conv_shape: tuple):
        self.pool_state = pool_state      # max: window offsets (N, F, Hq, Wq) int32; avg: None
        self.neuron_state = neuron_state  # ReLU: max, the pooled output; avg, its mask (N, F, Ho, Wo);
                                          # Tanh: its output (N, F, Ho, Wo)
        self.conv_shape = conv_shape      # (N, F, Ho, Wo), the convolution's output


class ConvNeuronPool(_FusedStep):
    """Conv2D -> ReLU or Tanh -> MaxPool2D or AvgPool2D, as one step of a ``Sequential``.

    It has a layer's ``forward``, ``backward`` and ``param_backward``, and
    keeps its state in the three layers it stands for: the convolution's input
    and gradients in the Conv2D, the pool's state in the pool and the
    neuron's (ReLU: the mask, or the pooled output; Tanh: its output) in the
    neuron layer, as a :class:`FusedState`.
    """

    def __init__(self, conv: Conv2D, neuron, pool):
        self.conv, self.neuron, self.pool = conv, neuron, pool
        self.name = f"{conv.name}+{neuron.name}+{pool.name}"

    def forward(self, x, train: bool = True):
        conv, neuron, pool = self.conv, self.neuron, self.pool
        _check_conv_input(conv, x)
        W, b = conv.params["W"], conv.params["b"]
        N, F = x.shape[0], conv.out_channels
        Ho = conv_output_size(x.shape[2], conv.kh, conv.stride, conv.padding)
        Wo = conv_output_size(x.shape[3], conv.kw, conv.stride, conv.padding)
        _, Hq, Wq = pool.output_shape((F, Ho, Wo))          # raises, naming the pool, if too small
        zero = W.dtype.type(0)
        out = np.empty((N, F, Hq, Wq), dtype=W.dtype)
        is_max = isinstance(pool, MaxPool2D)
        three = pool.kh == pool.kw == 3                                  # _maxpool3's windows
        if isinstance(neuron, Tanh):
            no_bias = np.zeros(F, dtype=W.dtype)                         # added before the tanh
            no_mask = np.zeros((1, 1, 1, 1), dtype=np.bool_)               # ReLU's, unused here
            state = np.empty((N, F, Hq, Wq), dtype=np.int32) if is_max else None
            neuron_state = np.empty((N, F, Ho, Wo), dtype=W.dtype)          # Tanh's output
            size = W.dtype.type(pool.kh * pool.kw)

            def finish(n0, m, prod):                                     # prod: (F, m, Ho, Wo)
                # NumPy's own tanh (vectorized, the reference's rounding), in place, in cache.
                np.add(prod, b.reshape(F, 1, 1, 1), out=prod)
                np.tanh(prod, out=prod)
                neuron_state[n0:n0 + m] = prod.transpose(1, 0, 2, 3)       # (m, F, Ho, Wo), a copy
                if is_max and three:
                    _maxpool3(prod, no_bias, False, pool.stride, zero, out[n0:n0 + m],
                              state[n0:n0 + m])
                elif is_max:
                    _maxpool_chunk(prod, pool.kh, pool.kw, pool.stride, out[n0:n0 + m],
                                   state[n0:n0 + m])
                elif three:
                    _avgpool3(prod, no_bias, False, pool.stride, size, zero, out[n0:n0 + m],
                              no_mask)
                else:
                    _avgpool_chunk(prod, pool.kh, pool.kw, pool.stride, size, out[n0:n0 + m])
        elif is_max:
            state = np.empty((N, F, Hq, Wq), dtype=np.int32)             # window offsets

            def finish(n0, m, prod):                                     # prod: (F, m, Ho, Wo)
                if three:
                    _maxpool3(prod, b, True, pool.stride, zero, out[n0:n0 + m], state[n0:n0 + m])
                else:
                    _bias_relu_maxpool(prod, b, pool.kh, pool.kw, pool.stride, zero,
                                       out[n0:n0 + m], state[n0:n0 + m])
            neuron_state = out                                             # > 0: ReLU let it through
        else:
            state = None                                                 # as numba avgpool_forward
            neuron_state = np.empty((N, F, Ho, Wo), dtype=np.bool_)        # ReLU's mask
            size = W.dtype.type(pool.kh * pool.kw)

            def finish(n0, m, prod):                                     # prod: (F, m, Ho, Wo)
                if three:
                    _avgpool3(prod, b, True, pool.stride, size, zero, out[n0:n0 + m],
                              neuron_state[n0:n0 + m])
                else:
                    _bias_relu_avgpool(prod, b, pool.kh, pool.kw, pool.stride, size, zero,
                                       out[n0:n0 + m], neuron_state[n0:n0 + m])
        conv_forward_chunks(x, W, conv.stride, conv.padding, conv.groups, finish)
        conv.cache = (np.ascontiguousarray(x),)                          # numba conv2d_forward's state
        pool.cache, pool.last_x_shape = (state, (N, F, Ho, Wo)), (N, F, Ho, Wo)   # for check_dout
        neuron.cache = FusedState(state, neuron_state, (N, F, Ho, Wo))
        neuron.last_x_shape = None                                         # its own backward refuses
        return out

    def backward(self, dout, input_grad: bool = True):
        conv, neuron, pool = self.conv, self.neuron, self.pool
        pool.check_dout(dout)                                            # (N, F, Hq, Wq)
        if not isinstance(neuron.cache, FusedState):
            raise LayerInputError(
                f"{self.name}: backward of the fused step after a forward that ran the layers one "
                f"by one: go back through what went forward (Sequential.backward after "
                f"Sequential.forward, or each layer's own backward)")
        dout = np.ascontiguousarray(dout)
        fused = neuron.cache
        state, neuron_state, (N, F, Ho, Wo) = fused.pool_state, fused.neuron_state, fused.conv_shape
        if isinstance(neuron, Tanh):
            is_max = isinstance(pool, MaxPool2D)
            arg = state if is_max else np.zeros((N, 1, 1, 1), dtype=np.int32)   # unused for avg
            size, one = dout.dtype.type(pool.kh * pool.kw), dout.dtype.type(1)

            def start(n0, m, dch, db):                                   # dch: (F, m, Ho, Wo)
                _pool_tanh_backward(dout[n0:n0 + m], arg[n0:n0 + m], neuron_state[n0:n0 + m],
                                    is_max, pool.kh, pool.kw, pool.stride, size, one, dch, db)
        elif isinstance(pool, MaxPool2D):
            zero = dout.dtype.type(0)

            def start(n0, m, dch, db):                                   # dch: (F, m, Ho, Wo)
                _maxpool_relu_backward(dout[n0:n0 + m], state[n0:n0 + m], neuron_state[n0:n0 + m],
                                       pool.kh, pool.kw, pool.stride, zero, dch, db)
        else:
            size, zero = dout.dtype.type(pool.kh * pool.kw), dout.dtype.type(0)

            def start(n0, m, dch, db):
                _avgpool_relu_backward(dout[n0:n0 + m], neuron_state[n0:n0 + m], pool.kh, pool.kw,
                                       pool.stride, size, zero, dch, db)
        return _conv_backward(conv, input_grad, Ho, Wo, start)


# -- Conv2D -> ReLU without a pool (AlexNet's conv1-conv4) ---------------------------------
@_kernel
def _bias_relu(prod, b, zero, out):
    """out = relu(prod + b), in the layer's layout.

    prod: (F, m, P), a chunk of W @ cols without the bias (the GEMM's layout);
    b: (F,); out: (m, F, P).  Equals ``conv2d_forward``'s ``+ b`` (one float32
    add) and ``numba_ops.relu_forward`` (v if v > 0, else 0).
    """
    F, m, P = prod.shape
    for n in range(m):
        for f in range(F):
            bf = b[f]
            src, dst = prod[f, n], out[n, f]            # (P,) views
            for p in range(P):
                v = src[p] + bf
                dst[p] = v if v > 0 else zero
    return out


@_kernel
def _relu_dout_chunk(dout, out, zero, dch, db):
    """dch[f, n] = dout[n, f] where out[n, f] > 0, else 0; db[f] += its sum (float64).

    dout, out: (m, F, P), ReLU's dout and its output; dch: (F, m, P), the
    convolution's dout in its GEMM's layout.  ``numba_ops.relu_backward``
    followed by ``conv2d_backward``'s copy of dout (``_dout_chunk``), in one pass.
    """
    m, F, P = dout.shape
    for f in range(F):
        acc = 0.0
        for n in range(m):
            src, o, dst = dout[n, f], out[n, f], dch[f, n]   # (P,) views
            for p in range(P):
                dst[p] = src[p] if o[p] > 0 else zero
            acc += sum64(dst)
        db[f] += acc
    return dch


class ConvReLU(_FusedStep):
    """Conv2D -> ReLU, as one step of a ``Sequential`` (where no pool follows the ReLU,
    as after AlexNet's conv1-conv4).

    Forward, each chunk's W @ cols gets the bias and the ReLU while in cache, and
    only the ReLU's output is written; backward, one pass turns ReLU's dout into
    the convolution's, in its GEMM's layout, with db.  The two layers are left
    with the very state their own forwards keep (the Conv2D its input, the ReLU
    its output, as ``numba_ops.relu_forward`` keeps it), so either backward, this
    step's or the layers' one by one, may follow.
    """

    def __init__(self, conv: Conv2D, relu: ReLU):
        self.conv, self.relu = conv, relu
        self.name = f"{conv.name}+{relu.name}"

    def forward(self, x, train: bool = True):
        conv, relu = self.conv, self.relu
        _check_conv_input(conv, x)
        W, b = conv.params["W"], conv.params["b"]
        N, F = x.shape[0], conv.out_channels
        Ho = conv_output_size(x.shape[2], conv.kh, conv.stride, conv.padding)
        Wo = conv_output_size(x.shape[3], conv.kw, conv.stride, conv.padding)
        out = np.empty((N, F, Ho * Wo), dtype=W.dtype)                    # (N, F, P)
        zero = W.dtype.type(0)

        def finish(n0, m, prod):                                         # prod: (F, m, Ho, Wo)
            _bias_relu(prod.reshape(F, m, Ho * Wo), b, zero, out[n0:n0 + m])

        conv_forward_chunks(x, W, conv.stride, conv.padding, conv.groups, finish)
        out = out.reshape(N, F, Ho, Wo)                                  # (N, F, Ho, Wo)
        conv.cache = (np.ascontiguousarray(x),)                          # numba conv2d_forward's state
        relu.last_x_shape = out.shape                                    # for check_dout
        relu.cache = out                                                 # numba relu_forward's state
        return out

    def backward(self, dout, input_grad: bool = True):
        conv, relu = self.conv, self.relu
        relu.check_dout(dout)                                            # (N, F, Ho, Wo)
        dout = np.ascontiguousarray(dout)
        N, F, Ho, Wo = dout.shape
        d3, out3 = dout.reshape(N, F, Ho * Wo), relu.cache.reshape(N, F, Ho * Wo)   # (N, F, P)
        zero = dout.dtype.type(0)

        def start(n0, m, dch, db):                                       # dch: (F, m, Ho, Wo)
            _relu_dout_chunk(d3[n0:n0 + m], out3[n0:n0 + m], zero, dch.reshape(F, m, Ho * Wo), db)

        return _conv_backward(conv, input_grad, Ho, Wo, start)


def _check_conv_input(conv: Conv2D, x) -> None:
    """``Conv2D.forward``'s check of its input, for the fused steps that stand for it."""
    conv.check_input(x, ndim=4, channels=conv.in_channels,
                     min_hw=(conv.kh - 2 * conv.padding, conv.kw - 2 * conv.padding),
                     expected=f"(N, {conv.in_channels}, H, W)")


def fuse(layers: list) -> list:
    """``layers`` with every Conv2D -> ReLU/Tanh -> MaxPool2D/AvgPool2D run on Numba as
    one :class:`ConvNeuronPool`, every other Conv2D -> ReLU as one :class:`ConvReLU`,
    and every other layer as it is."""
    steps, i = [], 0
    while i < len(layers):
        run = layers[i:i + 3]
        on_numba = [layer.backend == "numba" for layer in run]
        if (len(run) == 3 and type(run[0]) is Conv2D and type(run[1]) in (ReLU, Tanh)
                and type(run[2]) in (MaxPool2D, AvgPool2D) and all(on_numba)):
            steps.append(ConvNeuronPool(*run))
            i += 3
        elif (len(run) >= 2 and type(run[0]) is Conv2D and type(run[1]) is ReLU
                and all(on_numba[:2])):
            steps.append(ConvReLU(*run[:2]))
            i += 2
        else:
            steps.append(layers[i])
            i += 1
    return steps
