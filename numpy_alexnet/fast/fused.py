"""Numba backend: Conv2D -> ReLU (or Tanh) -> pooling run as one fused step.

In the reference, each of the three layers makes its own pass over the
convolution's output (N, F, Ho, Wo): the convolution writes it (plus the
bias), ReLU reads it and writes a second array, the pool reads that and
writes its output; the backward makes the same passes the other way.  On the
Figure-1 net these passes, over arrays far larger than the cache, cost about
as much as the convolutions' unfolding (docs/performance.md).

Here the convolution goes a chunk of the batch at a time anyway
(``numba_conv.conv_forward_chunks``), so each chunk's product W @ cols,
still in cache, is finished at once by one kernel: bias, ReLU and pooling,
written straight to the pool's output.  The convolution's output and the
ReLU's output are never stored.  Backward, one kernel turns each chunk of
the pool's dout into the convolution's dout, in the layout its GEMMs read,
and sums it for db (``numba_conv.conv_backward_chunks``).

Every kernel computes the same float32 values as the reference ops it
replaces, in the same order, where that order is the reference's (see each
docstring); tests/test_backends.py checks the fused steps against the
reference layers.  What a step keeps for its backward, in its own ``cache``:

* the convolution's input;
* max pooling: the window offset of each maximum (int32, as
  ``numba_pool.maxpool_forward`` keeps it) and the pooled output.  ReLU's
  mask is not needed: the maximum of a window of ReLU outputs is > 0
  exactly when the element it routes to was > 0;
* average pooling: ReLU's mask (bool, the size of the convolution's output),
  since every element of a window gets a share of its gradient;
* Tanh (Figure 1's other neuron), either pool: Tanh's output.  The bias and
  NumPy's tanh are applied to the chunk in place (NumPy's tanh is vectorized,
  and rounds as the reference does), then the pool's kernel; backward, one
  kernel does the pool's and the neuron's.

Where no pool follows a ReLU (AlexNet's conv1-conv4, each followed by LRN or
another convolution), :class:`ConvReLU` fuses the convolution and the ReLU
alone, the same way.

``fuse(layers)`` is this backend's ``fuse`` op: ``Sequential`` calls it once,
when the net is built or moved to the backend, to make its steps.  A step
writes only the gradients of the layers it stands for (their ``grads``), never
their caches: the layers' own forwards and backwards stay theirs, and a
step's backward after the layers ran one by one says so.
"""
from __future__ import annotations

import numba
import numpy as np

from ..backend import register
from ..layers import AvgPool2D, Conv2D, MaxPool2D, ReLU, Tanh
from ..layers.base import LayerInputError, check_dout, conv_output_size
from .numba_conv import conv_backward_chunks, conv_forward_chunks, sum64
from .numba_pool import _maxpool3_plane, _maxpool3_scratch

_kernel = numba.njit(cache=True, nogil=True)


# -- forward: bias + ReLU + pool on one chunk of W @ cols --------------------------------
@_kernel
def _maxpool_chunk(prod, b, relu, kh, kw, stride, zero, out, arg):
    """out = maxpool(relu(prod + b)) (``relu`` True) or maxpool(prod + b) (False), and
    arg = offset i*KW + j of each window's maximum.

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
                    best = zero if relu else plane[y0, x0] + bf   # relu(first) = 0 >= zero
                    where = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = plane[y0 + i, x0 + j] + bf
                            if v > best:                # strict: ties keep the first maximum
                                best = v
                                where = i * kw + j
                    out[n, f, y, xq] = best
                    arg[n, f, y, xq] = where
    return out


@_kernel
def _maxpool3(prod, b, relu, stride, zero, out, arg):
    """out, arg as :func:`_maxpool_chunk`, for 3 x 3 windows, the pool of every net here.

    The same values and offsets, plane by plane, in passes that the compiler
    vectorizes (``numba_pool._maxpool3_plane``): the one-pass kernels branch on
    every comparison, and the data decide those branches.
    """
    F, m, Ho, Wo = prod.shape
    scratch = _maxpool3_scratch(Ho, Wo, out.dtype)
    for f in range(F):
        for n in range(m):
            _maxpool3_plane(prod[f, n].ravel(), b[f], relu, zero, Wo, stride, out[n, f], arg[n, f],
                            *scratch)
    return out


@_kernel
def _avgpool_chunk(prod, b, relu, kh, kw, stride, size, zero, out, mask):
    """out = avgpool(relu(prod + b)) and mask = prod + b > 0, ReLU's state (``relu``
    True), or out = avgpool(prod) (False; b and mask unused).

    prod: (F, m, Ho, Wo) as in :func:`_maxpool_chunk`; out: (m, F, Hq, Wq);
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
            if relu:
                for y in range(Ho):
                    for x in range(Wo):
                        v = plane[y, x] + bf
                        mask[n, f, y, x] = v > 0
                        plane[y, x] = v if v > 0 else zero   # relu(prod + b), in place, in cache
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
    """out and mask as :func:`_avgpool_chunk`, for 3 x 3 windows.

    The same values: each window's nine elements are summed in the reference's
    row-major order, then divided by size.  Faster than one window at a time
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
    ``numba_pool.maxpool_backward`` does (overlapping windows add up), but
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
def _pool_tanh_backward(dout, arg, tout, is_max, kh, kw, stride, size, one, dch, db):
    """dch = tanh_backward(pool_backward(dout)), and db += its sums (float64).

    dout, arg: (m, F, Hq, Wq) (arg unused for average pooling); tout: (m, F,
    Ho, Wo), Tanh's output; dch: (F, m, Ho, Wo), written here.  The pool's
    backward as ``numba_pool.maxpool_backward`` (window order) or
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


# -- the fused steps -------------------------------------------------------------------------
class _FusedStep:
    """What the fused steps share: their layers, their own cache, the checks of their passes.

    ``layers``: the layers the step stands for, the Conv2D first; ``checked_by``
    the one whose output the step's output is (its name is in a wrong dout's
    message).
    """

    def __init__(self, *layers):
        self.layers = layers
        self.conv, self.checked_by = layers[0], layers[-1]
        self.name = "+".join(layer.name for layer in layers)
        self.cache, self.out_shape = None, None

    def _begin_forward(self, x):
        """The Conv2D's check of the input; (N, F, Ho, Wo) of its output."""
        conv = self.conv
        self.cache, self.out_shape = None, None
        conv.accepts.check(conv, x)
        Ho = conv_output_size(x.shape[2], conv.kh, conv.stride, conv.padding)
        Wo = conv_output_size(x.shape[3], conv.kw, conv.stride, conv.padding)
        return x.shape[0], conv.out_channels, Ho, Wo

    def _end_forward(self, out, cache):
        """Keep the step's cache; the layers it stands for have no forward of their own to go
        back through (their backward refuses until they run one)."""
        self.cache, self.out_shape = cache, out.shape
        for layer in self.layers:
            layer.last_out_shape = None
        return out

    def _begin_backward(self, dout):
        """dout checked against the last forward's output, as contiguous array."""
        last = self.checked_by
        check_dout(f"{type(last).__name__} '{last.name}'", dout, self.out_shape)
        if any(layer.last_out_shape is not None for layer in self.layers):
            raise LayerInputError(
                f"{self.name}: backward of the fused step after a forward that ran the layers one "
                f"by one: go back through what went forward (Sequential.backward after "
                f"Sequential.forward, or each layer's own backward)")
        return np.ascontiguousarray(dout)

    def _conv_backward(self, input_grad: bool, Ho: int, Wo: int, prologue):
        """The convolution's dW and db into its ``grads``, and dx (or None), from the
        chunks of its dout that ``prologue`` writes (``numba_conv.conv_backward_chunks``)."""
        conv = self.conv
        dx, conv.grads["W"], conv.grads["b"] = conv_backward_chunks(
            self.cache["x"], conv.params["W"], conv.stride, conv.padding, conv.groups,
            input_grad, Ho, Wo, prologue)
        return dx

    def param_backward(self, dout) -> None:
        """Only dW and db, as ``Conv2D.param_backward``."""
        self.backward(dout, input_grad=False)


class ConvNeuronPool(_FusedStep):
    """Conv2D -> ReLU or Tanh -> MaxPool2D or AvgPool2D, as one step of a ``Sequential``.

    Its cache: the convolution's input ``x``, the pool's ``state`` (max: the
    window offsets (N, F, Hq, Wq) int32; average: None) and the neuron's
    (ReLU and max: the pooled output; ReLU and average: its mask (N, F, Ho, Wo);
    Tanh: its output (N, F, Ho, Wo)), and the convolution's output shape.
    """

    def __init__(self, conv: Conv2D, neuron, pool):
        super().__init__(conv, neuron, pool)
        self.neuron, self.pool = neuron, pool

    def forward(self, x, train: bool = False):
        conv, neuron, pool = self.conv, self.neuron, self.pool
        N, F, Ho, Wo = self._begin_forward(x)
        W, b = conv.params["W"], conv.params["b"]
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
                    _maxpool_chunk(prod, no_bias, False, pool.kh, pool.kw, pool.stride, zero,
                                   out[n0:n0 + m], state[n0:n0 + m])
                elif three:
                    _avgpool3(prod, no_bias, False, pool.stride, size, zero, out[n0:n0 + m],
                              no_mask)
                else:
                    _avgpool_chunk(prod, no_bias, False, pool.kh, pool.kw, pool.stride, size, zero,
                                   out[n0:n0 + m], no_mask)
        elif is_max:
            state = np.empty((N, F, Hq, Wq), dtype=np.int32)             # window offsets

            def finish(n0, m, prod):                                     # prod: (F, m, Ho, Wo)
                if three:
                    _maxpool3(prod, b, True, pool.stride, zero, out[n0:n0 + m], state[n0:n0 + m])
                else:
                    _maxpool_chunk(prod, b, True, pool.kh, pool.kw, pool.stride, zero,
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
                    _avgpool_chunk(prod, b, True, pool.kh, pool.kw, pool.stride, size, zero,
                                   out[n0:n0 + m], neuron_state[n0:n0 + m])
        x = np.ascontiguousarray(x)
        conv_forward_chunks(x, W, conv.stride, conv.padding, conv.groups, finish)
        return self._end_forward(out, {"x": x, "state": state, "neuron": neuron_state,
                                       "conv_shape": (N, F, Ho, Wo)})

    def backward(self, dout, input_grad: bool = True):
        neuron, pool = self.neuron, self.pool
        dout = self._begin_backward(dout)                                # (N, F, Hq, Wq)
        state, neuron_state = self.cache["state"], self.cache["neuron"]
        N, F, Ho, Wo = self.cache["conv_shape"]
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
        return self._conv_backward(input_grad, Ho, Wo, start)


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
    the convolution's, in its GEMM's layout, with db.  Its cache: the
    convolution's input and the ReLU's output.
    """

    def forward(self, x, train: bool = False):
        N, F, Ho, Wo = self._begin_forward(x)
        W, b = self.conv.params["W"], self.conv.params["b"]
        out = np.empty((N, F, Ho * Wo), dtype=W.dtype)                    # (N, F, P)
        zero = W.dtype.type(0)

        def finish(n0, m, prod):                                         # prod: (F, m, Ho, Wo)
            _bias_relu(prod.reshape(F, m, Ho * Wo), b, zero, out[n0:n0 + m])

        x = np.ascontiguousarray(x)
        conv_forward_chunks(x, W, self.conv.stride, self.conv.padding, self.conv.groups, finish)
        out = out.reshape(N, F, Ho, Wo)                                  # (N, F, Ho, Wo)
        return self._end_forward(out, {"x": x, "out": out})

    def backward(self, dout, input_grad: bool = True):
        dout = self._begin_backward(dout)                                # (N, F, Ho, Wo)
        N, F, Ho, Wo = dout.shape
        d3 = dout.reshape(N, F, Ho * Wo)                                 # (N, F, P)
        out3 = self.cache["out"].reshape(N, F, Ho * Wo)                  # (N, F, P)
        zero = dout.dtype.type(0)

        def start(n0, m, dch, db):                                       # dch: (F, m, Ho, Wo)
            _relu_dout_chunk(d3[n0:n0 + m], out3[n0:n0 + m], zero, dch.reshape(F, m, Ho * Wo), db)

        return self._conv_backward(input_grad, Ho, Wo, start)


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


register("numba", fuse=fuse)
