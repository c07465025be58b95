"""Checks of notebook 1's exercises: the convolution, the neurons, the fully
connected layer and the loss, each forward and backward.

Every kernel is tried on cases that add one difficulty at a time (height
different from width, a non-square kernel, padding, stride 2, groups=2), in
float64 against the library and against central differences, and once in
float32, whose dtype it must keep: the network runs in float32.
"""
from __future__ import annotations

import numpy as np

from numpy_alexnet.backend import get_ops
from numpy_alexnet.layers import Conv2D, Linear, SoftmaxCrossEntropy
from numpy_alexnet.layers.base import conv_output_size

from . import (TOL_GRAD, agree, array, fail, numerical_gradient, python_lines, rel_error, spread,
               values, which)

REFERENCE = get_ops("numpy")

# (what the case adds, x shape (N, C, H, W), W shape (F, C/G, KH, KW), stride, pad, groups),
# one difficulty more in each: the first case that fails names the mistake.
CONV_CASES = [
    ("the simplest case", (2, 3, 6, 6), (4, 3, 3, 3), 1, 0, 1),
    ("height different from width", (2, 3, 7, 5), (4, 3, 3, 3), 1, 0, 1),
    ("a kernel 3 high and 2 wide", (2, 3, 7, 5), (4, 3, 3, 2), 1, 0, 1),
    ("padding 1", (2, 3, 7, 5), (4, 3, 3, 3), 1, 1, 1),
    ("stride 2", (2, 3, 9, 7), (4, 3, 3, 3), 2, 1, 1),
    ("groups=2", (2, 4, 9, 7), (6, 2, 3, 3), 2, 1, 2),
]
CASE_HINTS = {
    "height different from width": "Ho comes from H and Wo from W: a square input hides a swap",
    "a kernel 3 high and 2 wide": "KH is W.shape[2] (or kh) and KW is W.shape[3] (or kw)",
    "padding 1": "pad x with `pad` zeros on each side of H and W first (np.pad), and count "
                 "Ho = (H + 2*pad - KH) // stride + 1",
    "stride 2": "window (oy, ox) starts at pixel (oy*stride, ox*stride): step each slice by stride",
    "groups=2": "kernel f sees only the channels of its group g = f // (F/G): the rows of cols "
                "for group g are g*Cg*KH*KW to (g+1)*Cg*KH*KW, with Cg = C/G",
}


def _failing_case(run):
    """Run ``run(case)`` on each of CONV_CASES; on the first failure, fail naming the case
    and the hint for what it adds."""
    for case in CONV_CASES:
        try:
            run(case)
        except (NotImplementedError, NameError):
            raise
        except Exception as e:              # a wrong value, or a crash that only this case causes
            what = str(e) if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}"
            hint = CASE_HINTS.get(case[0]) if "hint:" not in what else None   # the closer hint first
            fail(f"{case[0]} (x {case[1]}, W {case[2]}, stride {case[3]}, pad {case[4]}, "
                 f"groups {case[5]}): {what}" + (f"; hint: {hint}" if hint else ""))


def _sizes(x_shape, kh, kw, stride, pad):
    N, C, H, W = x_shape
    return conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)


def _conv_layer(x_shape, W_shape, stride, pad, groups, seed=0):
    F, Cg, kh, kw = W_shape
    return Conv2D(x_shape[1], F, (kh, kw), stride=stride, padding=pad, groups=groups,
                  weight_std=0.5, bias=0.1, rng=np.random.default_rng(seed), dtype=np.float64)


def _conv_case(case, rng):
    """The library's Conv2D for one of CONV_CASES, an input for it, and its W and b."""
    _, x_shape, W_shape, stride, pad, groups = case
    layer = _conv_layer(x_shape, W_shape, stride, pad, groups)
    return layer, rng.standard_normal(x_shape), layer.params["W"], layer.params["b"]


def _same_lines(fn, small_args, large_args, what: str, loops: str) -> None:
    """Fail if ``fn`` runs more of its own lines on the larger data: a Python loop over
    ``loops``, which the exercise forbids."""
    _, small = python_lines(fn, *small_args)
    _, large = python_lines(fn, *large_args)
    if large > small + 2:
        fail(f"{what} ran {small} lines of your code on a small input and {large} on a larger "
             f"one: a Python loop over {loops}; loop over the KH*KW kernel offsets only, each "
             "offset one strided slice of every window at once")


def _keeps_float32(out, what: str) -> None:
    dtype = np.asarray(out).dtype
    if dtype != np.float32:
        fail(f"{what} is {dtype} for a float32 input: keep the input's dtype (the network runs "
             "in float32; a float64 constant or np.zeros without dtype= changes it)")


# -- 1.1 im2col ------------------------------------------------------------------------------
def test_im2col(im2col):
    rng = np.random.default_rng(1)

    def run(case):
        _, x_shape, W_shape, stride, pad, _ = case
        x = rng.standard_normal(x_shape)
        kh, kw = W_shape[2:]
        want = REFERENCE.im2col(x, kh, kw, stride, pad)
        got = array(im2col(x, kh, kw, stride, pad), "cols")
        N, C = x_shape[:2]
        Ho, Wo = _sizes(x_shape, kh, kw, stride, pad)
        if got.shape == (N, C * kh * kw, Ho * Wo) and got.shape != want.shape:
            fail(f"cols has shape {got.shape} = (N, C*KH*KW, Ho*Wo): lay the N images' columns "
                 f"side by side, ({C * kh * kw}, {N * Ho * Wo}) = (C*KH*KW, N*Ho*Wo)")
        if got.shape != want.shape:
            fail(f"cols has shape {got.shape}, expected {want.shape} = (C*KH*KW, N*Ho*Wo)")
        six = want.reshape(C, kh, kw, N, Ho, Wo)
        hint = which(got, {
            "rows in the order (KH, KW, C): row c*KH*KW + i*KW + j holds channel c at kernel "
            "offset (i, j)": six.transpose(1, 2, 0, 3, 4, 5).reshape(want.shape),
            "columns in the order (Ho, Wo, N): column n*Ho*Wo + oy*Wo + ox holds image n at "
            "output (oy, ox)": six.transpose(0, 1, 2, 4, 5, 3).reshape(want.shape)})
        agree(got, want, "cols against the library's im2col", hint=hint or "")

    _failing_case(run)
    x32 = rng.standard_normal((2, 3, 7, 5)).astype(np.float32)
    _keeps_float32(im2col(x32, 3, 3, 1, 1), "cols")
    _same_lines(im2col, (rng.standard_normal((1, 2, 5, 6)), 3, 3, 1, 1),
                (rng.standard_normal((3, 2, 13, 11)), 3, 3, 1, 1), "im2col", "pixels or images")


# -- 1.2 conv2d_forward ----------------------------------------------------------------------
def test_conv2d_forward(conv2d_forward):
    rng = np.random.default_rng(2)

    def run(case):
        _, x_shape, W_shape, stride, pad, groups = case
        layer, x, W, b = _conv_case(case, rng)
        want = layer.forward(x)
        got, _ = values(conv2d_forward(x, W, b, stride, pad, groups), ("out", "state"),
                        "conv2d_forward")
        got = array(got, "out")
        N, F = x_shape[0], W_shape[0]
        if got.shape == (F, N) + want.shape[2:] and got.shape != want.shape:
            fail(f"out has shape {got.shape} = (F, N, Ho, Wo), expected {want.shape} = (N, F, Ho, Wo)")
        hint = which(got, {"add the bias b[f] to every output of kernel f": want - b.reshape(1, -1, 1, 1)})
        agree(got, want, "out against the library's Conv2D", hint=hint or "")

    _failing_case(run)
    layer = _conv_layer((2, 4, 9, 7), (6, 2, 3, 3), 2, 1, 2)
    x32 = rng.standard_normal((2, 4, 9, 7)).astype(np.float32)
    out, _ = conv2d_forward(x32, layer.params["W"].astype(np.float32),
                            layer.params["b"].astype(np.float32), 2, 1, 2)
    _keeps_float32(out, "out")
    W, b = layer.params["W"], layer.params["b"]
    _same_lines(conv2d_forward, (rng.standard_normal((1, 4, 5, 6)), W, b, 2, 1, 2),
                (rng.standard_normal((3, 4, 13, 11)), W, b, 2, 1, 2), "conv2d_forward",
                "pixels or images (one matrix product per group does the whole batch)")


# -- 1.3 col2im ------------------------------------------------------------------------------
def test_col2im(col2im):
    rng = np.random.default_rng(3)

    def run(case):
        _, x_shape, W_shape, stride, pad, _ = case
        kh, kw = W_shape[2:]
        x = rng.standard_normal(x_shape)
        cols = rng.standard_normal(REFERENCE.im2col(x, kh, kw, stride, pad).shape)
        got = array(col2im(cols, x_shape, kh, kw, stride, pad), "dx")
        want = REFERENCE.col2im(cols, x_shape, kh, kw, stride, pad)
        N, C, H, W = x_shape
        if got.shape == (N, C, H + 2 * pad, W + 2 * pad) and pad:
            fail(f"dx has shape {got.shape}, the padded image's; hint: crop the padding, "
                 "dx[:, :, pad:pad + H, pad:pad + W]")
        if got.shape == (N, C, 0, 0) or got.shape == (N, C, 0, W) or got.shape == (N, C, H, 0):
            fail(f"dx has shape {got.shape}: with pad = 0, a[p:-p] is empty; crop with "
                 "dx[:, :, pad:pad + H, pad:pad + W]")
        agree(got, want, "dx", hint=which(got, {
            "where receptive fields overlap, add (+=) each column's share; assigning (=) keeps "
            "only the last": _assigned(cols, x_shape, kh, kw, stride, pad)}) or "")
        # The adjoint identity, what makes col2im the backward of im2col: <im2col(x), c> = <x, col2im(c)>
        lhs, rhs = np.sum(REFERENCE.im2col(x, kh, kw, stride, pad) * cols), np.sum(x * got)
        if abs(lhs - rhs) > 1e-10 * abs(lhs):
            fail(f"<im2col(x), c> = {lhs:.6f} but <x, col2im(c)> = {rhs:.6f}")

    _failing_case(run)
    c32 = rng.standard_normal((27, 2 * 7 * 5)).astype(np.float32)
    _keeps_float32(col2im(c32, (2, 3, 7, 5), 3, 3, 1, 1), "dx")
    _same_lines(col2im, (rng.standard_normal((18, 1 * 5 * 6)), (1, 2, 5, 6), 3, 3, 1, 1),
                (rng.standard_normal((18, 3 * 13 * 11)), (3, 2, 13, 11), 3, 3, 1, 1),
                "col2im", "pixels or images")


def _assigned(cols, x_shape, kh, kw, stride, pad):
    """col2im with '=' where '+=' belongs: what a learner gets by assigning."""
    N, C, H, W = x_shape
    Ho, Wo = _sizes(x_shape, kh, kw, stride, pad)
    six = cols.reshape(C, kh, kw, N, Ho, Wo)
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] = six[:, i, j].transpose(1, 0, 2, 3)
    return dx[:, :, pad:pad + H, pad:pad + W]


# -- 1.4 conv2d_backward ---------------------------------------------------------------------
def test_conv2d_backward(conv2d_forward, conv2d_backward):
    rng = np.random.default_rng(4)

    def run(case):
        _, x_shape, W_shape, stride, pad, groups = case
        layer, x, W, b = _conv_case(case, rng)
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape)
        want_dx = layer.backward(dout)
        want = {"dx": want_dx, "dW": layer.grads["W"], "db": layer.grads["b"]}
        _, state = values(conv2d_forward(x, W, b, stride, pad, groups), ("out", "state"), "conv2d_forward")
        got = dict(zip(("dx", "dW", "db"), values(
            conv2d_backward(dout, state, W, stride, pad, groups, True), ("dx", "dW", "db"),
            "conv2d_backward")))
        N = x_shape[0]
        hints = {
            "dW": {"dW sums over every image and every output position: no division by N":
                   want["dW"] / N},
            "db": {"db sums over every image and position: no division by N": want["db"] / N},
        }
        for name in ("db", "dW", "dx"):
            g = array(got[name], name)
            if name == "db" and g.shape != want["db"].shape:
                fail(f"db has shape {g.shape}: db[f] sums dout[:, f] over the batch and every "
                     f"position, shape (F,) = {want['db'].shape}")
            agree(g, want[name], f"{name} against the library's Conv2D.backward",
                  hint=which(g, hints.get(name, {})) or
                  ("dx = col2im of W^T dout per group: check that exercise 1.3 passes" if name == "dx" else ""))

    _failing_case(run)
    # Against central differences of the forward, in float64 (the definition of the gradient).
    x = rng.standard_normal((2, 4, 5, 4))
    layer = _conv_layer(x.shape, (4, 2, 3, 3), 2, 1, 2)
    W, b = layer.params["W"], layer.params["b"]
    dout = rng.standard_normal(layer.forward(x).shape)
    loss = lambda: float(np.sum(layer.forward(x) * dout))
    _, state = conv2d_forward(x, W, b, 2, 1, 2)
    dx, dW, db = values(conv2d_backward(dout, state, W, 2, 1, 2, True), ("dx", "dW", "db"), "conv2d_backward")
    for name, g, v in (("dx", dx, x), ("dW", dW, W), ("db", db, b)):
        agree(g, numerical_gradient(loss, v), f"{name} against central differences", tol=TOL_GRAD)
    # input_grad=False: the first layer's dx is not needed; None (or dx) is fine, dW and db are not optional
    _, dW2, db2 = values(conv2d_backward(dout, state, W, 2, 1, 2, False), ("dx", "dW", "db"),
                         "conv2d_backward(..., input_grad=False)")
    agree(dW2, dW, "dW with input_grad=False")
    agree(db2, db, "db with input_grad=False")
    x32, dout32 = x.astype(np.float32), dout.astype(np.float32)
    _, state32 = conv2d_forward(x32, W.astype(np.float32), b.astype(np.float32), 2, 1, 2)
    dx32, dW32, _ = conv2d_backward(dout32, state32, W.astype(np.float32), 2, 1, 2, True)
    _keeps_float32(dx32, "dx")
    _keeps_float32(dW32, "dW")


# -- 1.5 ReLU --------------------------------------------------------------------------------
def test_relu(relu_forward, relu_backward):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [1.5, 0.0, -1.0, 2.0, -3.0]])
    kept = x.copy()
    out, state = values(relu_forward(x), ("out", "state"), "relu_forward")
    if not np.array_equal(x, kept):
        fail("relu_forward changed its input x: compute a new array (np.maximum(x, 0) or "
             "x * (x > 0)); the layer below may still need x")
    agree(out, np.maximum(x, 0), "relu_forward's out", tol=1e-15)
    dout = np.arange(1.0, 11.0).reshape(2, 5)
    got = array(relu_backward(dout, state), "dx")
    want = dout * (x > 0)
    agree(got, want, "relu_backward's dx", tol=1e-15, hint=which(got, {
        "multiply by dout: the gradient that arrives is passed on where x > 0": (x > 0) * 1.0,
        "at x = 0 take the derivative 0, as the library does: pass dout where x > 0, not x >= 0":
            dout * (x >= 0),
        "the derivative of max(0, x) is 1 where x > 0 and 0 elsewhere, not x": dout * np.maximum(x, 0)}) or "")
    # A gradient check on values away from the kink
    xs, d = spread((3, 2, 4, 5), seed=5), np.random.default_rng(5).standard_normal((3, 2, 4, 5))
    _, s = relu_forward(xs)
    agree(relu_backward(d, s), numerical_gradient(lambda: float(np.sum(relu_forward(xs)[0] * d)), xs),
          "dx against central differences", tol=TOL_GRAD)
    x32 = x.astype(np.float32)
    out32, s32 = relu_forward(x32)
    _keeps_float32(out32, "relu_forward's out")
    _keeps_float32(relu_backward(dout.astype(np.float32), s32), "relu_backward's dx")


# -- 1.6 tanh --------------------------------------------------------------------------------
def test_tanh(tanh_forward, tanh_backward):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5)) * 2
    out, state = values(tanh_forward(x), ("out", "state"), "tanh_forward")
    agree(out, np.tanh(x), "tanh_forward's out", tol=1e-14)
    dout = rng.standard_normal(x.shape)
    got = array(tanh_backward(dout, state), "dx")
    t = np.tanh(x)
    agree(got, dout * (1 - t ** 2), "tanh_backward's dx", tol=1e-13, hint=which(got, {
        "multiply by dout": 1 - t ** 2,
        "the derivative is 1 - tanh(x)^2: square the output": dout * (1 - t),
        "the sign: d tanh(x)/dx = 1 - tanh(x)^2, positive": dout * (t ** 2 - 1),
        "the state already holds tanh(x): 1 - out^2, not 1 - tanh(out)^2": dout * (1 - np.tanh(t) ** 2),
        "the derivative is 1 - tanh(x)^2, of the output, not 1 - x^2": dout * (1 - x ** 2)}) or "")
    agree(got, numerical_gradient(lambda: float(np.sum(tanh_forward(x)[0] * dout)), x),
          "dx against central differences", tol=TOL_GRAD)
    out32, s32 = tanh_forward(x.astype(np.float32))
    _keeps_float32(out32, "tanh_forward's out")
    _keeps_float32(tanh_backward(dout.astype(np.float32), s32), "tanh_backward's dx")


# -- 1.7 the fully connected layer -----------------------------------------------------------
def test_linear(linear_forward, linear_backward):
    rng = np.random.default_rng(7)
    N, D, M = 4, 6, 3                        # all different: a transposition shows in the shapes
    layer = Linear(D, M, weight_std=0.5, bias=0.2, rng=rng, dtype=np.float64)
    W, b = layer.params["W"], layer.params["b"]
    x, dout = rng.standard_normal((N, D)), rng.standard_normal((N, M))
    out = array(linear_forward(x, W, b), "out")
    want = layer.forward(x)
    agree(out, want, "linear_forward's out", hint=which(out, {"add the bias b": x @ W}) or "")
    try:
        result = linear_backward(dout, x, W)
    except ValueError as e:                 # a product of arrays whose shapes do not chain
        fail(f"linear_backward raised ValueError ({e}); hint: each gradient has the shape of what "
             f"it differentiates, dx {x.shape} from dout {dout.shape} and W {W.shape}")
    got = dict(zip(("dx", "dW", "db"), values(result, ("dx", "dW", "db"), "linear_backward")))
    layer.backward(dout)
    mean = {"dW": layer.grads["W"] / N, "db": layer.grads["b"] / N}     # what dividing by N gives
    f = lambda: float(np.sum(layer.forward(x) * dout))          # d f / d(out) = dout
    for name, v in (("dx", x), ("dW", W), ("db", b)):
        g = array(got[name], name)
        if g.shape != v.shape:
            fail(f"{name} has shape {g.shape}, expected {v.shape}, the shape of "
                 f"{name[1:]}: a gradient has the shape of what it differentiates"
                 + ("; dW[d, m] = sum over n of x[n, d] dout[n, m]" if name == "dW" else ""))
        hint = which(g, {f"{name} sums over the batch (the loss adds every example's part), "
                         "not the mean": mean[name]}) if name in mean else None
        agree(g, numerical_gradient(f, v), f"{name} against central differences", tol=TOL_GRAD,
              hint=hint or "")
    x32 = x.astype(np.float32)
    _keeps_float32(linear_forward(x32, W.astype(np.float32), b.astype(np.float32)), "out")
    _keeps_float32(linear_backward(dout.astype(np.float32), x32, W.astype(np.float32))[1], "dW")


# -- 1.8 softmax cross-entropy ---------------------------------------------------------------
def test_softmax_cross_entropy(softmax_cross_entropy):
    rng = np.random.default_rng(8)
    library = SoftmaxCrossEntropy()
    z, y = rng.standard_normal((4, 10)), np.array([0, 3, 9, 4])

    def run(z, y, what, hint=""):
        loss, dz = values(softmax_cross_entropy(z, y), ("loss", "dz"), "softmax_cross_entropy")
        loss, dz = float(np.asarray(loss)), array(dz, "dz")
        want_loss = float(library.forward(z, y))
        want_dz = library.backward()
        if not np.isfinite(loss) or not np.all(np.isfinite(dz)):
            fail(f"{what}: the loss is {loss} (expected {want_loss:.4f})" + (f"; {hint}" if hint else ""))
        N = len(y)
        if abs(loss - want_loss * N) < 1e-9 * abs(want_loss * N) and N > 1:
            fail(f"{what}: loss {loss:.4f} is the sum over the batch; the loss is the mean, {want_loss:.4f}")
        if abs(loss - want_loss) > 1e-10 * max(1.0, abs(want_loss)):
            fail(f"{what}: loss {loss:.6f}, expected {want_loss:.6f} = -mean over n of log p[n, y_n]")
        onehot = np.eye(z.shape[1])[y]
        agree(dz, want_dz, f"{what}: dz", hint=which(dz, {
            "the loss is the mean over the N examples, so dz carries a factor 1/N": want_dz * N,
            "the sign: dL/dz = (p - onehot(y)) / N": -want_dz,
            "subtract 1 at each example's label: dL/dz = (p - onehot(y)) / N": want_dz + onehot / N}) or "")

    run(z, y, "random logits")
    run(z * 3 + 1000, y, "logits near 1000", "exp(1000) overflows: subtract each row's maximum "
        "before exp, which changes no probability")
    far = np.zeros((2, 5)); far[:, 1] = 800.0                  # label 0 has probability e^-800
    run(far, np.array([0, 1]), "a label the scores make e^-800 likely",
        "log(softmax) of a probability that rounds to 0 is -inf: compute "
        "log p = (z - max) - log(sum(exp(z - max))) directly (log-sum-exp)")
    # Against central differences of the library's loss
    loss, dz = softmax_cross_entropy(z, y)
    agree(dz, numerical_gradient(lambda: float(library.forward(z, y)), z), "dz against central differences",
          tol=TOL_GRAD)
    _, dz32 = softmax_cross_entropy(z.astype(np.float32), y)
    _keeps_float32(dz32, "dz")
