"""Solutions to the exercises of notebook 01_layers. Try them first."""
import numpy as np


def im2col_loops(x, kh, kw, stride, pad):
    """x (N, C, H, W) -> cols (C*KH*KW, N*Ho*Wo), written with loops."""
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))        # (N, C, H+2p, W+2p)
    cols = np.zeros((C * kh * kw, N * Ho * Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    row = c * kh * kw + i * kw + j                    # kernel offset (c, i, j)
                    for oy in range(Ho):
                        for ox in range(Wo):
                            cols[row, (n * Ho + oy) * Wo + ox] = xpad[n, c, oy * stride + i,
                                                                      ox * stride + j]
    return cols


def linear_backward(dout, x, W):
    """dout (N, M), x (N, D), W (D, M) -> dx (N, D), dW (D, M), db (M,)."""
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)
