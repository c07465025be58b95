"""Answers a learner might write, wrong and right, and what each exercise's check
must say to them.  tests/test_notebooks.py runs every one against its check;
``python notebooks/checks/mistakes.py`` prints the table of verdicts.

Each entry: (exercise, check, what the answer does, {name: function} replacing
the solution's functions of that name, what the verdict must contain).  A
verdict of "pass" is expected for answers that are right but written
differently from the solutions; a name given as None is not defined at all,
as after a kernel restart.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]


def solutions(notebook: str) -> dict:
    """The functions of notebooks/solutions/<notebook>.py, by name."""
    path = HERE.parent / "solutions" / f"{notebook}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(vars(module))


S1 = solutions("01_layers")


# -- notebook 1 ---------------------------------------------------------------------------------
def _sizes(H, W, kh, kw, stride, pad):
    return (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1


def im2col_old_layout(x, kh, kw, stride, pad):
    N = x.shape[0]
    cols = S1["im2col"](x, kh, kw, stride, pad)
    return cols.reshape(cols.shape[0], N, -1).transpose(1, 0, 2)          # (N, C*KH*KW, P)


def im2col_rows_khkwc(x, kh, kw, stride, pad):
    N, C = x.shape[:2]
    cols = S1["im2col"](x, kh, kw, stride, pad)
    return cols.reshape(C, kh, kw, -1).transpose(1, 2, 0, 3).reshape(cols.shape)


def im2col_columns_hwn(x, kh, kw, stride, pad):
    N, C, H, W = x.shape
    Ho, Wo = _sizes(H, W, kh, kw, stride, pad)
    cols = S1["im2col"](x, kh, kw, stride, pad)
    return cols.reshape(-1, N, Ho, Wo).transpose(0, 2, 3, 1).reshape(cols.shape)


def im2col_square(x, kh, kw, stride, pad):
    """Wo counted from H: right only where H == W."""
    N, C, H, W = x.shape
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (H + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride].transpose(1, 0, 2, 3)
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def im2col_no_pad(x, kh, kw, stride, pad):
    return S1["im2col"](x, kh, kw, stride, 0)


def im2col_pixel_loops(x, kh, kw, stride, pad):
    N, C, H, W = x.shape
    Ho, Wo = _sizes(H, W, kh, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((C * kh * kw, N * Ho * Wo), dtype=x.dtype)
    for n in range(N):
        for oy in range(Ho):
            for ox in range(Wo):
                patch = xp[n, :, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]
                cols[:, (n * Ho + oy) * Wo + ox] = patch.ravel()
    return cols


def im2col_as_strided(x, kh, kw, stride, pad):
    """Right, written another way: one strided view, one copy."""
    N, C, H, W = x.shape
    Ho, Wo = _sizes(H, W, kh, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    sN, sC, sH, sW = xp.strides
    v = np.lib.stride_tricks.as_strided(xp, (C, kh, kw, N, Ho, Wo), (sC, sH, sW, sN, sH * stride, sW * stride))
    return v.reshape(C * kh * kw, N * Ho * Wo)


def conv_forward_no_bias(x, W, b, stride, pad, groups):
    out, state = S1["conv2d_forward"](x, W, b, stride, pad, groups)
    return out - b.reshape(1, -1, 1, 1), state


def conv_forward_fnhw(x, W, b, stride, pad, groups):
    out, state = S1["conv2d_forward"](x, W, b, stride, pad, groups)
    return out.transpose(1, 0, 2, 3), state


def conv_forward_no_groups(x, W, b, stride, pad, groups):
    """Every kernel over the first C/G channels: right only for groups=1."""
    F, Cg, kh, kw = W.shape
    return S1["conv2d_forward"](x[:, :Cg], W, b, stride, pad, 1)


def conv_forward_einsum(x, W, b, stride, pad, groups):
    """Right, written another way: a loop over the groups and einsum."""
    N, C, H, Wd = x.shape
    F, Cg, kh, kw = W.shape
    Ho, Wo = _sizes(H, Wd, kh, kw, stride, pad)
    outs = []
    for g in range(groups):
        cols = S1["im2col"](x[:, g * Cg:(g + 1) * Cg], kh, kw, stride, pad)          # (Cg*KH*KW, N*P)
        Wg = W[g * (F // groups):(g + 1) * (F // groups)].reshape(F // groups, -1)
        outs.append(np.einsum("fk,kp->fp", Wg, cols).reshape(-1, N, Ho, Wo))
    out = np.concatenate(outs).transpose(1, 0, 2, 3) + b.reshape(1, F, 1, 1)
    return out, x


def col2im_assign(cols, x_shape, kh, kw, stride, pad):
    N, C, H, W = x_shape
    Ho, Wo = _sizes(H, W, kh, kw, stride, pad)
    six = cols.reshape(C, kh, kw, N, Ho, Wo)
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] = six[:, i, j].transpose(1, 0, 2, 3)
    return dx[:, :, pad:pad + H, pad:pad + W]


def col2im_uncropped(cols, x_shape, kh, kw, stride, pad):
    N, C, H, W = x_shape
    Ho, Wo = _sizes(H, W, kh, kw, stride, pad)
    six = cols.reshape(C, kh, kw, N, Ho, Wo)
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += six[:, i, j].transpose(1, 0, 2, 3)
    return dx


def col2im_minus_pad(cols, x_shape, kh, kw, stride, pad):
    dx = col2im_uncropped(cols, x_shape, kh, kw, stride, pad)
    return dx[:, :, pad:-pad, pad:-pad]                     # empty when pad = 0


def col2im_pixel_loops(cols, x_shape, kh, kw, stride, pad):
    N, C, H, W = x_shape
    Ho, Wo = _sizes(H, W, kh, kw, stride, pad)
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for n in range(N):
        for oy in range(Ho):
            for ox in range(Wo):
                col = cols[:, (n * Ho + oy) * Wo + ox].reshape(C, kh, kw)
                dx[n, :, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw] += col
    return dx[:, :, pad:pad + H, pad:pad + W]


def _conv_backward_scaled(dW_scale=1.0, db_scale=1.0, db_axes=(0, 2, 3)):
    def conv2d_backward(dout, state, W, stride, pad, groups, input_grad=True):
        dx, dW, _ = S1["conv2d_backward"](dout, state, W, stride, pad, groups, input_grad)
        return dx, dW * dW_scale, dout.sum(axis=db_axes) * db_scale
    return conv2d_backward


def conv_backward_mean(dout, state, W, stride, pad, groups, input_grad=True):
    N = dout.shape[0]
    return _conv_backward_scaled(1 / N, 1 / N)(dout, state, W, stride, pad, groups, input_grad)


def conv_backward_dW_mean(dout, state, W, stride, pad, groups, input_grad=True):
    return _conv_backward_scaled(1 / dout.shape[0])(dout, state, W, stride, pad, groups, input_grad)


def conv_backward_db_batch_only(dout, state, W, stride, pad, groups, input_grad=True):
    return _conv_backward_scaled(db_axes=0)(dout, state, W, stride, pad, groups, input_grad)


def conv_backward_assigning_col2im(dout, state, W, stride, pad, groups, input_grad=True):
    cols, x_shape = state
    N, F, Ho, Wo = dout.shape
    _, dW, db = S1["conv2d_backward"](dout, state, W, stride, pad, groups, False)
    d = dout.transpose(1, 0, 2, 3).reshape(groups, F // groups, -1)
    dcols = W.reshape(groups, F // groups, -1).transpose(0, 2, 1) @ d
    return col2im_assign(dcols.reshape(-1, N * Ho * Wo), x_shape, W.shape[2], W.shape[3], stride, pad), dW, db


def conv_backward_list(dout, state, W, stride, pad, groups, input_grad=True):
    """Right, written another way: a list, and dx computed even when not asked for."""
    return list(S1["conv2d_backward"](dout, state, W, stride, pad, groups, True))


def relu_forward_inplace(x):
    positive = x > 0
    x[~positive] = 0
    return x, positive


def relu_backward_mask_only(dout, positive):
    return positive * 1.0


def relu_forward_state_x(x):
    return np.maximum(x, 0), x


def relu_backward_ge0(dout, x):
    return dout * (x >= 0)


def relu_backward_times_x(dout, x):
    return dout * np.maximum(x, 0)


def relu_forward_float64(x):
    positive = x > 0
    return np.where(positive, x, 0.0).astype(np.float64), positive


def relu_backward_where(dout, x):
    """Right, written another way: the state is x itself."""
    return np.where(x > 0, dout, 0)


def tanh_backward_no_square(dout, out):
    return dout * (1 - out)


def tanh_backward_no_dout(dout, out):
    return 1 - out ** 2


def tanh_backward_sign(dout, out):
    return dout * (out ** 2 - 1)


def tanh_backward_tanh_again(dout, out):
    return dout * (1 - np.tanh(out) ** 2)


def tanh_forward_state_x(x):
    return np.tanh(x), x


def tanh_backward_from_x(dout, x):
    """Right, written another way: the state is x, the derivative 1 / cosh(x)^2."""
    return dout / np.cosh(x) ** 2


def linear_backward_list(dout, x, W):
    """Right, written another way: a list."""
    return [dout @ W.T, x.T @ dout, dout.sum(axis=0)]


def linear_backward_db_mean(dout, x, W):
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)


def linear_backward_dW_transposed(dout, x, W):
    return dout @ W.T, dout.T @ x, dout.sum(axis=0)


def linear_backward_dx_no_transpose(dout, x, W):
    return dout @ W, x.T @ dout, dout.sum(axis=0)


def linear_backward_two_values(dout, x, W):
    return dout @ W.T, x.T @ dout


def linear_forward_no_bias(x, W, b):
    return x @ W


def softmax_no_shift(z, y):
    N = z.shape[0]
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    dz = p.copy()
    dz[np.arange(N), y] -= 1
    return loss, dz / N


def softmax_log_of_softmax(z, y):
    N = z.shape[0]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    dz = p.copy()
    dz[np.arange(N), y] -= 1
    return loss, dz / N


def softmax_no_over_N(z, y):
    loss, dz = S1["softmax_cross_entropy"](z, y)
    return loss, dz * z.shape[0]


def softmax_sum_loss(z, y):
    loss, dz = S1["softmax_cross_entropy"](z, y)
    return loss * z.shape[0], dz


def softmax_sign(z, y):
    loss, dz = S1["softmax_cross_entropy"](z, y)
    return loss, -dz


def softmax_no_onehot(z, y):
    loss, dz = S1["softmax_cross_entropy"](z, y)
    dz = dz.copy()
    dz[np.arange(z.shape[0]), y] += 1 / z.shape[0]
    return loss, dz


def softmax_list_logsumexp(z, y):
    """Right, written another way: np.logaddexp.reduce, a list."""
    lse = np.logaddexp.reduce(z, axis=1, keepdims=True)          # (N, 1)
    N = len(y)
    p = np.exp(z - lse)
    p[np.arange(N), y] -= 1
    return [float(np.mean(lse[:, 0] - z[np.arange(N), y])), p / N]


MISTAKES = [
    ("1.1", "layers.test_im2col", "the old layout (N, C*KH*KW, Ho*Wo)", {"im2col": im2col_old_layout},
     "lay the N images' columns side by side"),
    ("1.1", "layers.test_im2col", "rows ordered (KH, KW, C)", {"im2col": im2col_rows_khkwc},
     "rows in the order (KH, KW, C)"),
    ("1.1", "layers.test_im2col", "columns ordered (Ho, Wo, N)", {"im2col": im2col_columns_hwn},
     "columns in the order (Ho, Wo, N)"),
    ("1.1", "layers.test_im2col", "Wo counted from H", {"im2col": im2col_square},
     "a square input hides a swap"),
    ("1.1", "layers.test_im2col", "no padding", {"im2col": im2col_no_pad}, "pad x with `pad` zeros"),
    ("1.1", "layers.test_im2col", "a Python loop over images and pixels", {"im2col": im2col_pixel_loops},
     "a Python loop over pixels or images"),
    ("1.1", "layers.test_im2col", "right: as_strided, one copy", {"im2col": im2col_as_strided}, "pass"),
    ("1.2", "layers.test_conv2d_forward", "no bias", {"conv2d_forward": conv_forward_no_bias},
     "add the bias b[f]"),
    ("1.2", "layers.test_conv2d_forward", "out as (F, N, Ho, Wo)", {"conv2d_forward": conv_forward_fnhw},
     "= (F, N, Ho, Wo)"),
    ("1.2", "layers.test_conv2d_forward", "groups ignored", {"conv2d_forward": conv_forward_no_groups},
     "kernel f sees only the channels of its group"),
    ("1.2", "layers.test_conv2d_forward", "right: a loop over groups, einsum",
     {"conv2d_forward": conv_forward_einsum}, "pass"),
    ("1.3", "layers.test_col2im", "assigns where windows overlap", {"col2im": col2im_assign},
     "add (+=) each column's share"),
    ("1.3", "layers.test_col2im", "the padding not cropped", {"col2im": col2im_uncropped},
     "crop the padding"),
    ("1.3", "layers.test_col2im", "cropped with [pad:-pad]", {"col2im": col2im_minus_pad},
     "with pad = 0, a[p:-p] is empty"),
    ("1.3", "layers.test_col2im", "a Python loop over images and pixels", {"col2im": col2im_pixel_loops},
     "a Python loop over pixels or images"),
    ("1.4", "layers.test_conv2d_backward", "dW and db divided by N", {"conv2d_backward": conv_backward_mean},
     "no division by N"),
    ("1.4", "layers.test_conv2d_backward", "dW divided by N", {"conv2d_backward": conv_backward_dW_mean},
     "dW sums over every image and every output position"),
    ("1.4", "layers.test_conv2d_backward", "db summed over the batch only",
     {"conv2d_backward": conv_backward_db_batch_only}, "db[f] sums dout[:, f] over the batch and every position"),
    ("1.4", "layers.test_conv2d_backward", "dx folded back by assigning",
     {"conv2d_backward": conv_backward_assigning_col2im}, "check that exercise 1.3 passes"),
    ("1.4", "layers.test_conv2d_backward", "right: a list, dx always", {"conv2d_backward": conv_backward_list},
     "pass"),
    ("1.5", "layers.test_relu", "the forward zeroes x in place", {"relu_forward": relu_forward_inplace},
     "changed its input x"),
    ("1.5", "layers.test_relu", "the backward forgets dout", {"relu_backward": relu_backward_mask_only},
     "multiply by dout"),
    ("1.5", "layers.test_relu", "the gradient passed at x = 0 too",
     {"relu_forward": relu_forward_state_x, "relu_backward": relu_backward_ge0}, "not x >= 0"),
    ("1.5", "layers.test_relu", "dout times x", {"relu_forward": relu_forward_state_x,
                                                  "relu_backward": relu_backward_times_x}, "not x"),
    ("1.5", "layers.test_relu", "float64 out for float32 x", {"relu_forward": relu_forward_float64},
     "keep the input's dtype"),
    ("1.5", "layers.test_relu", "right: x as the state, np.where",
     {"relu_forward": relu_forward_state_x, "relu_backward": relu_backward_where}, "pass"),
    ("1.6", "layers.test_tanh", "1 - out, not squared", {"tanh_backward": tanh_backward_no_square},
     "square the output"),
    ("1.6", "layers.test_tanh", "the backward forgets dout", {"tanh_backward": tanh_backward_no_dout},
     "multiply by dout"),
    ("1.6", "layers.test_tanh", "the sign flipped", {"tanh_backward": tanh_backward_sign}, "the sign"),
    ("1.6", "layers.test_tanh", "tanh of the output again", {"tanh_backward": tanh_backward_tanh_again},
     "the state already holds tanh(x)"),
    ("1.6", "layers.test_tanh", "right: x as the state, 1/cosh^2",
     {"tanh_forward": tanh_forward_state_x, "tanh_backward": tanh_backward_from_x}, "pass"),
    ("1.7", "layers.test_linear", "right: a list [dx, dW, db]", {"linear_backward": linear_backward_list},
     "pass"),
    ("1.7", "layers.test_linear", "db the mean", {"linear_backward": linear_backward_db_mean},
     "db sums over the batch"),
    ("1.7", "layers.test_linear", "dW = dout^T x", {"linear_backward": linear_backward_dW_transposed},
     "dW[d, m] = sum over n of x[n, d] dout[n, m]"),
    ("1.7", "layers.test_linear", "dx = dout W", {"linear_backward": linear_backward_dx_no_transpose},
     "each gradient has the shape of what it differentiates"),
    ("1.7", "layers.test_linear", "two values returned", {"linear_backward": linear_backward_two_values},
     "return 3 values (dx, dW, db)"),
    ("1.7", "layers.test_linear", "the forward without b", {"linear_forward": linear_forward_no_bias},
     "add the bias b"),
    ("1.8", "layers.test_softmax_cross_entropy", "no shift before exp", {"softmax_cross_entropy": softmax_no_shift},
     "subtract each row's maximum"),
    ("1.8", "layers.test_softmax_cross_entropy", "log of the softmax",
     {"softmax_cross_entropy": softmax_log_of_softmax}, "log-sum-exp"),
    ("1.8", "layers.test_softmax_cross_entropy", "dz not divided by N",
     {"softmax_cross_entropy": softmax_no_over_N}, "dz carries a factor 1/N"),
    ("1.8", "layers.test_softmax_cross_entropy", "the loss summed over the batch",
     {"softmax_cross_entropy": softmax_sum_loss}, "the loss is the mean"),
    ("1.8", "layers.test_softmax_cross_entropy", "dz = onehot - p", {"softmax_cross_entropy": softmax_sign},
     "the sign"),
    ("1.8", "layers.test_softmax_cross_entropy", "dz = p / N, no onehot",
     {"softmax_cross_entropy": softmax_no_onehot}, "subtract 1 at each example's label"),
    ("1.8", "layers.test_softmax_cross_entropy", "right: logaddexp, a list",
     {"softmax_cross_entropy": softmax_list_logsumexp}, "pass"),
]

# -- notebook 2 ---------------------------------------------------------------------------------
from checks.lrn_and_pooling import window_sum  # noqa: E402  (the checks' plain window sum)

S2 = solutions("02_lrn_and_pooling")


def _slices(x, kh, kw, stride, Ho, Wo):
    """(i, j, the slice of offset (i, j) of every window) for each window offset."""
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(None), slice(None), slice(i, i + stride * Ho, stride), slice(j, j + stride * Wo, stride))


def maxpool_forward_from_zero(x, kh, kw, stride):
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for _, _, s in _slices(x, kh, kw, stride, Ho, Wo):
        np.maximum(out, x[s], out=out)
    return out, (x, out)


def maxpool_forward_ceil(x, kh, kw, stride):
    N, C, H, W = x.shape
    Ho, Wo = -(-(H - kh) // stride) + 1, -(-(W - kw) // stride) + 1
    xp = np.pad(x, ((0, 0), (0, 0), (0, stride), (0, stride)), constant_values=-np.inf)
    out = np.full((N, C, Ho, Wo), -np.inf, dtype=x.dtype)
    for _, _, s in _slices(xp, kh, kw, stride, Ho, Wo):
        np.maximum(out, xp[s], out=out)
    return out, (x, out)


def maxpool_forward_square(x, kh, kw, stride):
    """The window kh x kh: right only for square windows."""
    return S2["maxpool_forward"](x, kh, kh, stride)


def maxpool_forward_window_loops(x, kh, kw, stride):
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for oy in range(Ho):
        for ox in range(Wo):
            out[:, :, oy, ox] = x[:, :, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw].max(axis=(2, 3))
    return out, (x, out)


def maxpool_forward_strided_view(x, kh, kw, stride):
    """Right, written another way: a strided view of every window, one max."""
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    sN, sC, sH, sW = x.strides
    win = np.lib.stride_tricks.as_strided(x, (N, C, Ho, Wo, kh, kw), (sN, sC, sH * stride, sW * stride, sH, sW))
    out = win.max(axis=(4, 5))
    return out, (x, out)


def _maxpool_backward(assign=False, use_dout=True, ties="first"):
    """The solution's loop with a learner's slip: '=' for '+=', no dout, ties to all or the last."""
    def maxpool_backward(dout, state, x_shape, kh, kw, stride):
        x, out = state
        Ho, Wo = out.shape[2:]
        dx = np.zeros(x_shape, dtype=dout.dtype)
        unrouted = np.ones(out.shape, dtype=bool)
        offsets = list(_slices(x, kh, kw, stride, Ho, Wo))
        for i, j, s in (reversed(offsets) if ties == "last" else offsets):
            hit = (x[s] == out) & (unrouted if ties != "all" else True)
            unrouted &= ~hit
            g = (dout if use_dout else 1.0) * hit
            if assign:
                dx[s] = np.where(hit, g, dx[s])
            else:
                dx[s] += g
        return dx
    return maxpool_backward


def maxpool_backward_argmax_loops(dout, state, x_shape, kh, kw, stride):
    """Right, but by window: np.argmax per window, a Python loop over every window."""
    x, out = state
    N, C, Ho, Wo = dout.shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    win = x[n, c, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]
                    r, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, oy * stride + r, ox * stride + q] += dout[n, c, oy, ox]
    return dx


def maxpool_backward_mask_by_argmax(dout, state, x_shape, kh, kw, stride):
    """Right, written another way: the first maximum's offset by argmax over a strided view."""
    x, out = state
    N, C, Ho, Wo = dout.shape
    sN, sC, sH, sW = x.strides
    win = np.lib.stride_tricks.as_strided(x, (N, C, Ho, Wo, kh * kw), (sN, sC, sH * stride, sW * stride, 0))
    flat = np.lib.stride_tricks.as_strided(x, (N, C, Ho, Wo, kh, kw), (sN, sC, sH * stride, sW * stride, sH, sW))
    first = flat.reshape(N, C, Ho, Wo, kh * kw).argmax(axis=4)       # (N, C, Ho, Wo)
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for i, j, s in _slices(x, kh, kw, stride, Ho, Wo):
        dx[s] += dout * (first == i * kw + j)
    return dx


def avgpool_forward_sum(x, kh, kw, stride):
    out, state = S2["avgpool_forward"](x, kh, kw, stride)
    return out * (kh * kw), state


def avgpool_backward_undivided(dout, state, x_shape, kh, kw, stride):
    return S2["avgpool_backward"](dout, state, x_shape, kh, kw, stride) * (kh * kw)


def avgpool_backward_assign(dout, state, x_shape, kh, kw, stride):
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for _, _, s in _slices(dx, kh, kw, stride, Ho, Wo):
        dx[s] = dout / (kh * kw)
    return dx


def avgpool_backward_ones(dout, state, x_shape, kh, kw, stride):
    return S2["avgpool_backward"](np.ones_like(dout), state, x_shape, kh, kw, stride)


def avgpool_via_conv(x, kh, kw, stride):
    """Right, written another way: a convolution with a constant kernel, one per channel."""
    N, C, H, W = x.shape
    cols = S1["im2col"](x.reshape(N * C, 1, H, W), kh, kw, stride, 0)          # (KH*KW, N*C*Ho*Wo)
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    return cols.mean(axis=0).reshape(N, C, Ho, Wo).astype(x.dtype), None


def _lrn_forward(alpha_over_n=False, wrap=False, half=None, one_sided=False, own_only=False,
                 squares=True, beta_sign=-1):
    def lrn_forward(x, n, k, alpha, beta):
        C, h = x.shape[1], (n // 2 if half is None else half(n))
        v = x * x if squares else x
        summed = np.zeros_like(x)
        for i in range(C):
            lo, hi = (i, i + n - 1) if one_sided else (i - h, i + h)
            js = [j % C for j in range(lo, hi + 1)] if wrap else range(max(0, lo), min(C - 1, hi) + 1)
            summed[:, i] = v[:, i] if own_only else sum(v[:, j] for j in js)
        scale = k + (alpha / n if alpha_over_n else alpha) * summed
        return x * scale ** (beta_sign * beta), scale
    return lrn_forward


def lrn_forward_moving_sum(x, n, k, alpha, beta):
    """Right, written another way: a cumulative sum over the channels."""
    C, h = x.shape[1], n // 2
    csum = np.concatenate([np.zeros_like(x[:, :1]), np.cumsum(x * x, axis=1)], axis=1)   # (N, C+1, H, W)
    lo, hi = np.maximum(np.arange(C) - h, 0), np.minimum(np.arange(C) + h, C - 1) + 1
    scale = k + alpha * (csum[:, hi] - csum[:, lo])
    return x * scale ** -beta, scale


def _lrn_backward(sign=-1, alpha_over_n=False, wrap=False, own_only=False, short=False, two=2.0,
                  direct=True, inner_a=False, times_a=True):
    def lrn_backward(dout, x, out, scale, n, k, alpha, beta):
        h = n // 2 - (1 if short else 0)
        g = dout * (x if inner_a else out) / scale
        summed = g if own_only else window_sum(g, h, h, wrap)
        a = (alpha / n) if alpha_over_n else alpha
        cross = two * a * beta * (x if times_a else 1.0) * summed
        return (dout * scale ** -beta if direct else 0.0) + sign * cross
    return lrn_backward


def lrn_backward_loops_over_channels(dout, x, out, scale, n, k, alpha, beta):
    """Right, written another way: the chain rule as a loop over pairs of channels."""
    C, h = x.shape[1], n // 2
    dx = dout * scale ** -beta
    for i in range(C):
        for j in range(max(0, i - h), min(C - 1, i + h) + 1):          # j in w(i): b_i depends on a_j
            dx[:, j] -= dout[:, i] * x[:, i] * beta * scale[:, i] ** (-beta - 1) * 2 * alpha * x[:, j]
    return dx


MISTAKES += [
    ("2.3", "lrn_and_pooling.test_maxpool_forward", "the maximum started from 0",
     {"maxpool_forward": maxpool_forward_from_zero}, "not from 0"),
    ("2.3", "lrn_and_pooling.test_maxpool_forward", "sizes rounded up (ceil mode)",
     {"maxpool_forward": maxpool_forward_ceil}, "rounded down"),
    ("2.3", "lrn_and_pooling.test_maxpool_forward", "the window kh x kh", {"maxpool_forward": maxpool_forward_square},
     "the window is KH rows by KW columns"),
    ("2.3", "lrn_and_pooling.test_maxpool_forward", "a Python loop over windows",
     {"maxpool_forward": maxpool_forward_window_loops}, "a Python loop over windows or pixels"),
    ("2.3", "lrn_and_pooling.test_maxpool_forward", "right: a strided view and max",
     {"maxpool_forward": maxpool_forward_strided_view}, "pass"),
    ("2.4", "lrn_and_pooling.test_maxpool_backward", "assigns where windows overlap",
     {"maxpool_backward": _maxpool_backward(assign=True)}, "add (+=) their gradients"),
    ("2.4", "lrn_and_pooling.test_maxpool_backward", "forgets dout (sends 1)",
     {"maxpool_backward": _maxpool_backward(use_dout=False)}, "multiply by dout"),
    ("2.4", "lrn_and_pooling.test_maxpool_backward", "sends the gradient to every tied maximum",
     {"maxpool_backward": _maxpool_backward(ties="all")}, "a tie sends it to one only"),
    ("2.4", "lrn_and_pooling.test_maxpool_backward", "sends a tie's gradient to the last maximum",
     {"maxpool_backward": _maxpool_backward(ties="last")}, "not the last"),
    ("2.4", "lrn_and_pooling.test_maxpool_backward", "right values, a loop over every window",
     {"maxpool_backward": maxpool_backward_argmax_loops}, "a Python loop over windows or pixels"),
    ("2.4", "lrn_and_pooling.test_maxpool_backward", "right: argmax over a strided view",
     {"maxpool_backward": maxpool_backward_mask_by_argmax}, "pass"),
    ("2.5", "lrn_and_pooling.test_avgpool", "the forward's sum not divided", {"avgpool_forward": avgpool_forward_sum},
     "divide each window's sum by its KH*KW inputs"),
    ("2.5", "lrn_and_pooling.test_avgpool", "the backward not divided", {"avgpool_backward": avgpool_backward_undivided},
     "each of a window's KH*KW inputs gets dout / (KH*KW)"),
    ("2.5", "lrn_and_pooling.test_avgpool", "the backward assigns", {"avgpool_backward": avgpool_backward_assign},
     "add (+=) each window's share"),
    ("2.5", "lrn_and_pooling.test_avgpool", "the backward forgets dout", {"avgpool_backward": avgpool_backward_ones},
     "multiply by dout"),
    ("2.5", "lrn_and_pooling.test_avgpool", "right: the forward as a convolution", {"avgpool_forward": avgpool_via_conv},
     "pass"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "alpha divided by n", {"lrn_forward": _lrn_forward(alpha_over_n=True)},
     "dividing it by n first is Caffe's and PyTorch's convention"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "a window that wraps around", {"lrn_forward": _lrn_forward(wrap=True)},
     "not wrapped around"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "a window of n - 2 channels",
     {"lrn_forward": _lrn_forward(half=lambda n: n // 2 - 1)}, "the window holds n channels"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "a window from i to i + n - 1", {"lrn_forward": _lrn_forward(one_sided=True)},
     "the window is centred on channel i"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "channel i alone", {"lrn_forward": _lrn_forward(own_only=True)},
     "not channel i alone"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "the sum of a, not a^2", {"lrn_forward": _lrn_forward(squares=False)},
     "the sum is of squares"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "multiplied by scale^beta", {"lrn_forward": _lrn_forward(beta_sign=1)},
     "divide by scale^beta"),
    ("2.1", "lrn_and_pooling.test_lrn_forward", "right: a cumulative sum over channels",
     {"lrn_forward": lrn_forward_moving_sum}, "pass"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "the cross term's sign flipped", {"lrn_backward": _lrn_backward(sign=1)},
     "the cross-channel term is subtracted"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "alpha / n", {"lrn_backward": _lrn_backward(alpha_over_n=True)},
     "dividing alpha by n is another convention"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "a window that wraps around", {"lrn_backward": _lrn_backward(wrap=True)},
     "not wrapped"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "its own channel only", {"lrn_backward": _lrn_backward(own_only=True)},
     "not only in its own"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "a window of n - 2 channels", {"lrn_backward": _lrn_backward(short=True)},
     "the window holds n channels"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "the factor 2 missing", {"lrn_backward": _lrn_backward(two=1.0)},
     "a factor 2 is missing"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "the direct term missing", {"lrn_backward": _lrn_backward(direct=False)},
     "the direct term"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "a_i in the inner sum, not b_i", {"lrn_backward": _lrn_backward(inner_a=True)},
     "the inner sum is of dout_i b_i / s_i"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "the factor a_j missing", {"lrn_backward": _lrn_backward(times_a=False)},
     "carries a factor a_j"),
    ("2.2", "lrn_and_pooling.test_lrn_backward", "right: the chain rule over pairs of channels",
     {"lrn_backward": lrn_backward_loops_over_channels}, "pass"),
]


# -- notebooks 3 to 6 ---------------------------------------------------------------------------
S3, S4 = solutions("03_alexnet_tour"), solutions("04_training_relu_vs_tanh")
S5, S6 = solutions("05_what_it_learned"), solutions("06_paper_vs_2012_code")


def side_after_float(H, layers):
    sides = []
    for K, stride, pad in layers:
        H = (H + 2 * pad - K) / stride + 1
        sides.append(H)
    return sides


def side_after_int_of_float(H, layers):
    sides = []
    for K, stride, pad in layers:
        H = int((H + 2 * pad - K) / stride) + 1
        sides.append(H)
    return sides


def side_after_no_pad(H, layers):
    return S3["side_after"](H, [(K, s, 0) for K, s, p in layers])


def side_after_ceil(H, layers):
    sides = []
    for K, stride, pad in layers:
        H = -(-(H + 2 * pad - K) // stride) + 1
        sides.append(H)
    return sides


def side_after_last_only(H, layers):
    return S3["side_after"](H, layers)[-1]


def conv_params_no_groups(F, C, K, groups):
    return F * C * K * K + F


def conv_params_no_bias(F, C, K, groups):
    return F * (C // groups) * K * K


def conv_params_float(F, C, K, groups):
    return F * C / groups * K * K + F


def conv_params_per_group(F, C, K, groups):
    """Right, written another way: the groups counted one by one."""
    return sum((F // groups) * (C // groups) * K * K + F // groups for _ in range(groups))


def momentum_rebinding(w, g, v, momentum, decay_lr, lr):
    v = momentum * v - decay_lr * w - lr * g
    w = w + v
    return w, v


def momentum_w_first(w, g, v, momentum, decay_lr, lr):
    w += v                                                  # the old velocity
    v *= momentum
    v -= decay_lr * w
    v -= lr * g


def momentum_decay_twice(w, g, v, momentum, decay_lr, lr):
    v *= momentum
    v -= decay_lr * lr * w
    v -= lr * g
    w += v


def momentum_no_decay(w, g, v, momentum, decay_lr, lr):
    v *= momentum
    v -= lr * g
    w += v


def momentum_sign(w, g, v, momentum, decay_lr, lr):
    v *= momentum
    v -= decay_lr * w
    v += lr * g
    w += v


def momentum_rebuilt(w, g, v, momentum, decay_lr, lr):
    v[...] = -decay_lr * w - lr * g
    w += v


def momentum_slices(w, g, v, momentum, decay_lr, lr):
    """Right, written another way: full-slice assignments."""
    v[:] = momentum * v - decay_lr * w - lr * g
    w[:] = w + v


def torch_lr_at_entry(w, b, grad, lr, momentum, weight_decay):
    b = momentum * b + lr * (grad + weight_decay * w)
    return w - b, b


def torch_no_decay(w, b, grad, lr, momentum, weight_decay):
    b = momentum * b + grad
    return w - lr * b, b


def torch_sign(w, b, grad, lr, momentum, weight_decay):
    b = momentum * b + (grad + weight_decay * w)
    return w + lr * b, b


def sq_distances_loop(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.array([np.maximum(((row - b) ** 2).sum(axis=1), 0) for row in a])


def sq_distances_broadcast(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)


def sq_distances_float32(a, b):
    sq = (a ** 2).sum(axis=1)[:, None] + (b ** 2).sum(axis=1)[None, :] - 2 * a @ b.T
    return np.maximum(sq, 0)


def sq_distances_unclipped(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a ** 2).sum(axis=1)[:, None] + (b ** 2).sum(axis=1)[None, :] - 2 * a @ b.T


def sq_distances_plus_cross(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.maximum((a ** 2).sum(axis=1)[:, None] + (b ** 2).sum(axis=1)[None, :], 0)


def sq_distances_einsum(a, b):
    """Right, written another way: einsum for the norms."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = np.einsum("nd,nd->n", a, a)[:, None] + np.einsum("md,md->m", b, b)[None, :] - 2 * a @ b.T
    return d.clip(min=0)


def grey_share_no_three(W):
    grey = W.mean(axis=1, keepdims=True)
    return (grey ** 2).sum(axis=(1, 2, 3)) / (W ** 2).sum(axis=(1, 2, 3))


def grey_share_colour(W):
    return 1 - S5["grey_share"](W)


def grey_share_wrong_axis(W):
    grey = W.mean(axis=(2, 3), keepdims=True)
    return 3 * (grey ** 2).sum(axis=(1, 2, 3)) / (W ** 2).sum(axis=(1, 2, 3))


def grey_share_norms(W):
    grey = W.mean(axis=1, keepdims=True)
    return np.sqrt(3 * (grey ** 2).sum(axis=(1, 2, 3))) / np.sqrt((W ** 2).sum(axis=(1, 2, 3))) ** 1


def grey_share_projection(W):
    """Right, written another way: the projection onto (1, 1, 1)/sqrt(3)."""
    u = np.ones(3) / np.sqrt(3)
    along = np.einsum("fckl,c->fkl", W, u)                     # (F, K, K)
    return (along ** 2).sum(axis=(1, 2)) / (W ** 2).sum(axis=(1, 2, 3))


def dropout_rate_as_keep(x, keep, rate, mode, train):
    if mode == "paper":
        return x * keep if train else x * rate
    return x * keep / rate if train else x


def dropout_paper_unscaled(x, keep, rate, mode, train):
    if mode == "paper":
        return x * keep if train else x
    return S6["dropout"](x, keep, rate, mode, train)


def dropout_inverted_at_test(x, keep, rate, mode, train):
    if mode == "inverted" and not train:
        return x * (1 - rate)
    return S6["dropout"](x, keep, rate, mode, train)


def dropout_backward_unscaled(dout, keep, rate, mode):
    return dout * keep


def dropout_backward_rate_as_keep(dout, keep, rate, mode):
    return dout * keep / rate if mode == "inverted" else dout * keep


def dropout_where(x, keep, rate, mode, train):
    """Right, written another way: np.where, the scale chosen first."""
    scale = {("paper", True): 1.0, ("paper", False): 1 - rate,
             ("inverted", True): 1 / (1 - rate), ("inverted", False): 1.0}[(mode, train)]
    return np.where(keep, x * scale, 0) if train else x * scale


def positions_math_ceil(H, K, stride, pad):
    return math.ceil((H + 2 * pad - K) / stride) + 1


def positions_np_ceil(H, K, stride, pad):
    return int(np.ceil((H + 2 * pad - K) / stride)) + 1


def positions_floor(H, K, stride, pad):
    return (H + 2 * pad - K) // stride + 1


def positions_plus_stride(H, K, stride, pad):
    return (H + 2 * pad - K + stride) // stride + 1


def positions_plus_b_minus_1(H, K, stride, pad):
    """Right, written another way: (a + b - 1) // b."""
    return (H + 2 * pad - K + stride - 1) // stride + 1


MISTAKES += [
    ("3.1", "alexnet_tour.test_side_after", "/ instead of //", {"side_after": side_after_float}, "holds floats"),
    ("3.1", "alexnet_tour.test_side_after", "int() of a float division", {"side_after": side_after_int_of_float},
     "float division rounds a number this large"),
    ("3.1", "alexnet_tour.test_side_after", "the padding left out", {"side_after": side_after_no_pad}, "the padding"),
    ("3.1", "alexnet_tour.test_side_after", "rounded up", {"side_after": side_after_ceil}, "the floor"),
    ("3.1", "alexnet_tour.test_side_after", "only the last side", {"side_after": side_after_last_only},
     "return a list"),
    ("3.2", "alexnet_tour.test_conv_params", "groups ignored", {"conv_params": conv_params_no_groups},
     "each kernel sees only the C/groups channels"),
    ("3.2", "alexnet_tour.test_conv_params", "no biases", {"conv_params": conv_params_no_bias},
     "each of the F kernels has a bias"),
    ("3.2", "alexnet_tour.test_conv_params", "a float", {"conv_params": conv_params_float}, "returned the float"),
    ("3.2", "alexnet_tour.test_conv_params", "right: group by group", {"conv_params": conv_params_per_group}, "pass"),
    ("4.1", "training.test_momentum_update", "new arrays returned, nothing in place",
     {"momentum_update": momentum_rebinding}, "update them in place"),
    ("4.1", "training.test_momentum_update", "w updated with the old v", {"momentum_update": momentum_w_first},
     "update v first"),
    ("4.1", "training.test_momentum_update", "decay multiplied by lr again", {"momentum_update": momentum_decay_twice},
     "decay_lr is already weight_decay x lr"),
    ("4.1", "training.test_momentum_update", "no weight decay", {"momentum_update": momentum_no_decay},
     "the weight decay term"),
    ("4.1", "training.test_momentum_update", "the gradient's sign", {"momentum_update": momentum_sign},
     "against the gradient"),
    ("4.1", "training.test_momentum_update", "the velocity rebuilt every step", {"momentum_update": momentum_rebuilt},
     "momentum times the old v"),
    ("4.1", "training.test_momentum_update", "right: full-slice assignments", {"momentum_update": momentum_slices},
     "pass"),
    ("4.2", "training.test_torch_sgd_step", "lr applied at entry", {"torch_sgd_step": torch_lr_at_entry},
     "lr multiplies it when it is used"),
    ("4.2", "training.test_torch_sgd_step", "no weight decay", {"torch_sgd_step": torch_no_decay},
     "b <- momentum b + (g + weight_decay w)"),
    ("4.2", "training.test_torch_sgd_step", "the sign", {"torch_sgd_step": torch_sign},
     "w <- w - lr b"),
    ("5.2", "what_it_learned.test_sq_distances", "a Python loop over rows", {"sq_distances": sq_distances_loop},
     "a Python loop over rows"),
    ("5.2", "what_it_learned.test_sq_distances", "an (n, m, D) array", {"sq_distances": sq_distances_broadcast},
     "an (n, m, D) array"),
    ("5.2", "what_it_learned.test_sq_distances", "float32 arithmetic", {"sq_distances": sq_distances_float32},
     "compute in float64"),
    ("5.2", "what_it_learned.test_sq_distances", "not clipped at 0", {"sq_distances": sq_distances_unclipped},
     "clip at 0"),
    ("5.2", "what_it_learned.test_sq_distances", "the cross term left out", {"sq_distances": sq_distances_plus_cross},
     "the cross term is -2 a.b"),
    ("5.2", "what_it_learned.test_sq_distances", "right: einsum, clip", {"sq_distances": sq_distances_einsum},
     "pass"),
    ("5.2", "what_it_learned.test_sq_distances", "right, in a cell that also defines d and W",
     {"sq_distances": S5["sq_distances"], "d": np.zeros((2, 2)), "W": "not kernels"}, "pass"),
    ("5.2", "what_it_learned.test_sq_distances", "not defined (a restarted kernel, the check cell run first)",
     {"sq_distances": None}, "not defined yet; run the exercise cell above first"),
    ("5.1", "what_it_learned.test_grey_share", "no factor 3", {"grey_share": grey_share_no_three},
     "its energy is 3 x sum(grey^2)"),
    ("5.1", "what_it_learned.test_grey_share", "the colour part's share", {"grey_share": grey_share_colour},
     "that is the colour part's share"),
    ("5.1", "what_it_learned.test_grey_share", "the mean over the pixels", {"grey_share": grey_share_wrong_axis},
     "the mean over the 3 colour channels"),
    ("5.1", "what_it_learned.test_grey_share", "norms, not energies", {"grey_share": grey_share_norms},
     "energy is the sum of squares"),
    ("5.1", "what_it_learned.test_grey_share", "right: the projection on (1, 1, 1)",
     {"grey_share": grey_share_projection}, "pass"),
    ("5.1", "what_it_learned.test_grey_share", "right, in a cell that also defines W and shares",
     {"grey_share": S5["grey_share"], "W": np.ones((2, 3, 5, 5)), "shares": np.arange(3)}, "pass"),
    ("6.1", "paper_vs_code.test_dropout", "rate taken as the keep probability",
     {"dropout": dropout_rate_as_keep}, "the probability of keeping it is 1 - rate"),
    ("6.1", "paper_vs_code.test_dropout", "the paper's test time unscaled", {"dropout": dropout_paper_unscaled},
     "multiplied by 1 - rate"),
    ("6.1", "paper_vs_code.test_dropout", "the inverted form scaled at test time too",
     {"dropout": dropout_inverted_at_test}, "leaves test time alone"),
    ("6.1", "paper_vs_code.test_dropout", "the inverted backward without 1 / (1 - rate)",
     {"dropout_backward": dropout_backward_unscaled}, "exactly what the forward did"),
    ("6.1", "paper_vs_code.test_dropout", "the backward's rate taken as the keep probability",
     {"dropout_backward": dropout_backward_rate_as_keep}, "scaled by 1 / (1 - rate)"),
    ("6.1", "paper_vs_code.test_dropout", "right: np.where, the scale first", {"dropout": dropout_where}, "pass"),
    ("6.2", "paper_vs_code.test_positions_ceil", "math.ceil", {"positions_ceil": positions_math_ceil},
     "went through a float"),
    ("6.2", "paper_vs_code.test_positions_ceil", "int(np.ceil(...))", {"positions_ceil": positions_np_ceil},
     "went through a float"),
    ("6.2", "paper_vs_code.test_positions_ceil", "the floor", {"positions_ceil": positions_floor}, "that is the floor"),
    ("6.2", "paper_vs_code.test_positions_ceil", "(a + b) // b", {"positions_ceil": positions_plus_stride},
     "off by one"),
    ("6.2", "paper_vs_code.test_positions_ceil", "right: (a + b - 1) // b", {"positions_ceil": positions_plus_b_minus_1},
     "pass"),
]


# -- notebook 7 ---------------------------------------------------------------------------------
S7 = solutions("07_capstone")


def _train_epoch(train=True, step=True, step_first=False, after_step=False, weighted=True):
    """The solution's loop with one slip: test mode, no step, the step before the backward,
    errors counted after the step, or each batch's numbers averaged without their sizes."""
    def train_epoch(net, opt, batches, loss_fn):
        losses, errors, sizes = [], [], []
        for x, y in batches:
            scores = net.forward(x, train=train)
            loss, dz = loss_fn(scores, y)
            if step_first:
                opt.step()
            net.backward(dz, input_grad=False)
            if step and not step_first:
                opt.step()
            if after_step:
                scores = net.forward(x, train=False)
            losses.append(float(loss))
            errors.append(float((scores.argmax(axis=1) != y).mean()))
            sizes.append(len(y))
        w = np.array(sizes) if weighted else np.ones(len(sizes))
        return float(np.average(losses, weights=w)), float(np.average(errors, weights=w))
    return train_epoch


def train_epoch_backward_loss(net, opt, batches, loss_fn):
    for x, y in batches:
        loss, dz = loss_fn(net.forward(x, train=True), y)
        net.backward(loss)
        opt.step()
    return 0.0, 0.0


def _test_error(train=False, axis=1, weighted=True, count=False):
    def test_error(net, batches):
        errors, sizes = [], []
        for x, y in batches:
            wrong = net.forward(x, train=train).argmax(axis=axis) != y
            errors.append(wrong.sum() if count else wrong.mean())
            sizes.append(len(y))
        if count:
            return int(sum(errors))
        return float(np.average(errors, weights=sizes if weighted else None))
    return test_error


def test_error_concatenated(net, batches):
    """Right, written another way: all the scores first, then the library's topk_error."""
    from numpy_alexnet.data import topk_error
    scores, labels = zip(*[(net.forward(x), y) for x, y in batches])
    return topk_error(np.concatenate(scores), np.concatenate(labels))


MISTAKES += [
    ("7.1", "capstone.test_train_epoch", "forward in test mode", {"train_epoch": _train_epoch(train=False)},
     "call forward(x, train=True)"),
    ("7.1", "capstone.test_train_epoch", "no opt.step()", {"train_epoch": _train_epoch(step=False)},
     "call opt.step() after net.backward(dz)"),
    ("7.1", "capstone.test_train_epoch", "the step before the backward", {"train_epoch": _train_epoch(step_first=True)},
     "in that order"),
    ("7.1", "capstone.test_train_epoch", "errors counted after the step", {"train_epoch": _train_epoch(after_step=True)},
     "before the step changed the weights"),
    ("7.1", "capstone.test_train_epoch", "batch means averaged without their sizes",
     {"train_epoch": _train_epoch(weighted=False)}, "weight each batch by its size"),
    ("7.1", "capstone.test_train_epoch", "net.backward(loss)", {"train_epoch": train_epoch_backward_loss},
     "net.backward takes dz"),
    ("7.2", "capstone.test_test_error", "training mode", {"test_error": _test_error(train=True)},
     "net.forward(x, train=False)"),
    ("7.2", "capstone.test_test_error", "batch errors averaged without their sizes",
     {"test_error": _test_error(weighted=False)}, "the mean of the batches' errors"),
    ("7.2", "capstone.test_test_error", "a count, not a fraction", {"test_error": _test_error(count=True)},
     "not a count"),
    ("7.2", "capstone.test_test_error", "argmax over the batch axis", {"test_error": _test_error(axis=0)},
     "scores.argmax(axis=1)"),
    ("7.2", "capstone.test_test_error", "right: all scores, then topk_error", {"test_error": test_error_concatenated},
     "pass"),
]


SOLUTIONS = {"layers": S1, "lrn_and_pooling": S2, "alexnet_tour": S3, "training": S4,
             "what_it_learned": S5, "paper_vs_code": S6, "capstone": S7}


def run(entry) -> str:
    """The verdict the check of ``entry`` prints for its answer."""
    import nbtools
    from checks import (alexnet_tour, capstone, layers, lrn_and_pooling,  # noqa: F401
                        paper_vs_code, training, what_it_learned)  # the modules MISTAKES names
    exercise, where, _, functions, _ = entry
    module_name, test_name = where.split(".")
    module = sys.modules[f"checks.{module_name}"]
    namespace = {**SOLUTIONS[module_name], **functions}
    namespace = {k: v for k, v in namespace.items() if not (v is None and k in functions)}
    with np.errstate(all="ignore"):                # the wrong answers overflow, as they should
        return nbtools.verdict(getattr(module, test_name), namespace)


if __name__ == "__main__":
    for entry in MISTAKES:
        verdict = run(entry)
        ok = entry[4] in verdict
        print(f"{'ok ' if ok else 'BAD'} {entry[0]} {entry[2]}: {verdict[:300]}")
