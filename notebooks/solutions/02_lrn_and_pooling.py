"""Solutions to the exercises of notebook 02_lrn_and_pooling. Try them first."""
import numpy as np


def maxpool_forward(x, kh, kw, stride):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), state for the backward): the maximum of each window."""
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = x[:, :, 0:stride * Ho:stride, 0:stride * Wo:stride].copy()   # offset (0, 0) of every window
    for i in range(kh):
        for j in range(kw):                                             # a running maximum over the offsets
            np.maximum(out, x[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride], out=out)
    return out, (x, out)


def maxpool_backward(dout, state, x_shape, kh, kw, stride):
    """dout (N, C, Ho, Wo) -> dx (N, C, H, W): each dout to the first maximum of its window."""
    x, out = state
    Ho, Wo = out.shape[2:]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    unrouted = np.ones(out.shape, dtype=bool)                           # windows still to route
    for i in range(kh):
        for j in range(kw):                                             # offsets in row-major order
            hit = (x[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] == out) & unrouted
            unrouted &= ~hit                                            # a tie's later maxima get nothing
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += dout * hit   # add: overlaps
    return dx


def avgpool_forward(x, kh, kw, stride):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), None): the mean of each window."""
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += x[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride]
    return out / x.dtype.type(kh * kw), None


def avgpool_backward(dout, state, x_shape, kh, kw, stride):
    """dout (N, C, Ho, Wo) -> dx (N, C, H, W): each window's dout shared equally by its inputs."""
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    share = dout / dout.dtype.type(kh * kw)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += share
    return dx


def channel_window_sum(v, n):
    """(N, C, H, W) -> (N, C, H, W): out[:, i] = sum of v[:, j] for j from i - n//2 to i + n//2,
    cut at 0 and C - 1."""
    half, C = n // 2, v.shape[1]
    padded = np.pad(v, ((0, 0), (half, half), (0, 0), (0, 0)))          # zeros do the cutting
    return sum(padded[:, d:d + C] for d in range(2 * half + 1))


def lrn_forward(x, n, k, alpha, beta):
    """x (N, C, H, W) -> (out, scale), scale = k + alpha * (the window's sum of squares)."""
    scale = k + alpha * channel_window_sum(x * x, n)
    return x * scale ** -beta, scale


def lrn_backward(dout, x, out, scale, n, k, alpha, beta):
    """dL/dx[j] = dout[j] s[j]^-beta - 2 alpha beta x[j] sum_{i in w(j)} dout[i] out[i] / s[i]."""
    return dout * scale ** -beta - 2 * alpha * beta * x * channel_window_sum(dout * out / scale, n)
