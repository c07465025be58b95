"""Solutions to the exercises of notebook 01_layers. Try them first."""
import numpy as np


def im2col(x, kh, kw, stride, pad):
    """x (N, C, H, W) -> cols (C*KH*KW, N*Ho*Wo): rows ordered (C, KH, KW), columns (N, Ho, Wo)."""
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))           # (N, C, H+2p, W+2p)
    cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):                                             # offset (i, j) of every window
            window = xp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride]   # (N, C, Ho, Wo)
            cols[:, i, j] = window.transpose(1, 0, 2, 3)                # (C, N, Ho, Wo)
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def conv2d_forward(x, W, b, stride, pad, groups):
    """x (N, C, H, W), W (F, C/G, KH, KW), b (F,) -> (out (N, F, Ho, Wo), state for the backward)."""
    N, C, H, Wd = x.shape
    F, Cg, kh, kw = W.shape
    G = groups
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (Wd + 2 * pad - kw) // stride + 1
    cols = im2col(x, kh, kw, stride, pad).reshape(G, Cg * kh * kw, N * Ho * Wo)   # (G, Cg*KH*KW, N*P)
    out = W.reshape(G, F // G, Cg * kh * kw) @ cols                    # (G, F/G, N*P): a product per group
    out = out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)               # (N, F, Ho, Wo)
    return out + b.reshape(1, F, 1, 1), (cols, x.shape)


def col2im(cols, x_shape, kh, kw, stride, pad):
    """cols (C*KH*KW, N*Ho*Wo) -> dx (N, C, H, W): each column added back where its window lies."""
    N, C, H, W = x_shape
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    cols = cols.reshape(C, kh, kw, N, Ho, Wo)
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):                                             # add: windows overlap
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dx[:, :, pad:pad + H, pad:pad + W]                           # (N, C, H, W), also for pad = 0


def conv2d_backward(dout, state, W, stride, pad, groups, input_grad=True):
    """dout (N, F, Ho, Wo) -> (dx (N, C, H, W) or None, dW (F, C/G, KH, KW), db (F,))."""
    cols, x_shape = state                                               # (G, Cg*KH*KW, N*P)
    N, F, Ho, Wo = dout.shape
    G = groups
    db = dout.sum(axis=(0, 2, 3))                                       # (F,)
    d = dout.transpose(1, 0, 2, 3).reshape(G, F // G, N * Ho * Wo)      # (G, F/G, N*P)
    dW = (d @ cols.transpose(0, 2, 1)).reshape(W.shape)                 # (F, C/G, KH, KW)
    if not input_grad:
        return None, dW, db
    dcols = W.reshape(G, F // G, -1).transpose(0, 2, 1) @ d             # (G, Cg*KH*KW, N*P)
    dx = col2im(dcols.reshape(-1, N * Ho * Wo), x_shape, W.shape[2], W.shape[3], stride, pad)
    return dx, dW, db


def relu_forward(x):
    """x -> (max(0, x), the mask of positive inputs)."""
    positive = x > 0
    return x * positive, positive


def relu_backward(dout, positive):
    return dout * positive                      # 1 where x > 0, 0 elsewhere (0 at x = 0)


def tanh_forward(x):
    """x -> (tanh(x), tanh(x) again: the backward needs only the output)."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, out):
    return dout * (1 - out * out)               # d tanh(x)/dx = 1 - tanh(x)^2


def linear_forward(x, W, b):
    """x (N, D), W (D, M), b (M,) -> out (N, M)."""
    return x @ W + b


def linear_backward(dout, x, W):
    """dout (N, M), x (N, D), W (D, M) -> dx (N, D), dW (D, M), db (M,)."""
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def softmax_cross_entropy(z, y):
    """z (N, K) scores, y (N,) labels -> (the mean loss, dL/dz (N, K))."""
    N = z.shape[0]
    shifted = z - z.max(axis=1, keepdims=True)                          # (N, K), at most 0: no overflow
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)) # (N, K), log-sum-exp
    loss = -logp[np.arange(N), y].mean()
    dz = np.exp(logp)                                                   # softmax, (N, K)
    dz[np.arange(N), y] -= 1
    return loss, dz / N
