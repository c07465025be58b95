"""Local response normalization across channels (section 3.3 of the paper).

    b[i] = a[i] / (k + alpha * sum_{j = max(0, i-n/2)}^{min(N-1, i+n/2)} a[j]^2) ** beta

with k=2, n=5, alpha=1e-4, beta=0.75, applied after the ReLU of conv1 and
conv2.  The window is truncated at the first and last channel.

The alpha/n trap: here ``alpha`` multiplies the *sum*, as in the paper.  Caffe
and PyTorch divide their alpha by n, so the paper's layer is
``torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``; TensorFlow's
``depth_radius`` is the half-width n//2 and its alpha also multiplies the sum.

Backward.  Write s[i] = k + alpha * sum_{j in w(i)} a[j]^2 (the *scale*), so
b[i] = a[i] * s[i]^-beta.  Because the window is symmetric, j in w(i) exactly
when i in w(j), and

    da[j] = dout[j] * s[j]^-beta
            - 2 * alpha * beta * a[j] * sum_{i in w(j)} dout[i] * a[i] * s[i]^(-beta-1)

i.e. the same windowed channel sum, applied to dout * b / s.
"""
from __future__ import annotations

from ..backend import get_array_module, register
from .base import Accepts, Layer, is_finite_number, keyword_only


# -- the reference kernels ----------------------------------------------------------
def channel_window_sum(v, n: int):
    """sum_{j in [i - n//2, i + n//2], clipped to [0, C-1]} v[:, j] for each channel i.

    v: (N, C, H, W) -> (N, C, H, W).  Zero padding of the channel axis does the
    truncation; the loop runs over the n window offsets, not over pixels.
    """
    xp = get_array_module(v)
    half = n // 2
    C = v.shape[1]
    padded = xp.pad(v, ((0, 0), (half, half), (0, 0), (0, 0)))   # (N, C + 2*half, H, W)
    out = xp.zeros_like(v)
    for d in range(2 * half + 1):
        out += padded[:, d:d + C]
    return out


def lrn_forward(x, n: int, k: float, alpha: float, beta: float):
    """x (N, C, H, W) -> (out, scale), scale = k + alpha * windowed sum of x^2."""
    scale = k + alpha * channel_window_sum(x * x, n)              # (N, C, H, W)
    return x * scale ** -beta, scale


def lrn_backward(dout, x, out, scale, n: int, k: float, alpha: float, beta: float):
    """The formula in the module docstring, with b = out."""
    inner = channel_window_sum(dout * out / scale, n)             # (N, C, H, W)
    return dout * scale ** -beta - 2.0 * alpha * beta * x * inner


register("numpy", lrn_forward=lrn_forward, lrn_backward=lrn_backward)


# -- the layer ----------------------------------------------------------------------
class LocalResponseNorm(Layer):
    """The paper's LRN: ``n`` adjacent channels, alpha multiplying the sum."""
    accepts = Accepts(ndim=4, shape="(N, C, H, W)", groups="groups")

    @keyword_only
    def __init__(self, *, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75,
                 groups: int = 1, name: str | None = None):
        super().__init__(name=name)
        self.n = self.check_int("n", n, 1)
        self.check_arg("n", n, n % 2 == 1, "odd (a window centred on each channel)")
        # The scale k + alpha * sum(a^2) is raised to -beta: it must stay > 0 even
        # where every input is 0 (after a ReLU, often), hence k > 0 and alpha >= 0.
        self.check_arg("k", k, is_finite_number(k) and k > 0, "a finite number > 0")
        self.check_arg("alpha", alpha, is_finite_number(alpha) and alpha >= 0,
                       "a finite number >= 0")
        self.check_arg("beta", beta, is_finite_number(beta) and beta >= 0, "a finite number >= 0")
        self.k, self.alpha, self.beta = float(k), float(alpha), float(beta)
        self.groups = self.check_int("groups", groups, 1)

    def describe(self) -> str:
        g = f", groups={self.groups}" if self.groups > 1 else ""
        return f"n={self.n}, k={self.k:g}, alpha={self.alpha:g}, beta={self.beta:g}{g}"

    def _grouped(self, a):
        """(N, C, H, W) -> (N*G, C/G, H, W): with groups, each group's channels are
        normalized on their own (the window is truncated at the group's edges too),
        as on one of the paper's two GPUs."""
        N, C, H, W = a.shape
        return a.reshape(N * self.groups, C // self.groups, H, W)     # (N*G, C/G, H, W)

    def forward(self, x, train: bool = False):
        xg = self._grouped(x)                                           # (N*G, C/G, H, W)
        out, scale = self.ops.lrn_forward(xg, self.n, self.k, self.alpha, self.beta)
        self.cache = (xg, out, scale)
        return out.reshape(x.shape)                                     # (N, C, H, W)

    def backward(self, dout):
        xg, out, scale = self.cache
        dx = self.ops.lrn_backward(self._grouped(dout), xg, out, scale,
                                   self.n, self.k, self.alpha, self.beta)  # (N*G, C/G, H, W)
        return dx.reshape(dout.shape)                                   # (N, C, H, W)
