# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: numpy_alexnet
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   numpy_alexnet:
#     needs_data: false
# ---

# %% [markdown]
# # 2. Local response normalization and overlapping pooling
#
# Two of the paper's less common ingredients, each worth about half a point
# to a point and a half of error:
#
# * **Local response normalization** (section 3.3): each activation is divided
#   by a power of the summed squares of its neighbours *across channels* at the
#   same pixel: a form of lateral inhibition. Reported gain: top-1 1.4%, top-5 1.2%.
# * **Overlapping pooling** (section 3.4): 3x3 max-pool windows at stride 2, so
#   neighbouring windows share a row or a column. Reported gain over 2x2/2:
#   top-1 0.4%, top-5 0.3%.
#
# For each: what it computes, the library's layer against the formula, and the
# trap that catches implementations: for LRN, what `alpha` means (the
# **alpha/n convention**); for pooling, that the backward pass must **add**
# where windows overlap.

# %%
import numpy as np
import matplotlib.pyplot as plt
from nbtools import setup, check, solution, show
ROOT, OUT = setup("02_lrn_and_pooling")

# %%
from numpy_alexnet.layers import LocalResponseNorm, MaxPool2D, AvgPool2D
from numpy_alexnet.layers.base import conv_output_size
from numpy_alexnet.gradcheck import check_layer, rel_error

rng = np.random.default_rng(0)


# %% [markdown]
# ## Local response normalization: the formula
#
# With $a^i_{x,y}$ the activity of kernel $i$ at pixel $(x, y)$ after the ReLU,
# and $N$ kernels in the layer:
#
# $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\, i-n/2)}^{\min(N-1,\, i+n/2)} \big(a^j_{x,y}\big)^2\Big)^{\beta}$$
#
# with $k = 2$, $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$, after the ReLU of
# conv1 and conv2. Two details: $n/2$ is the half-width rounded down (2 for
# $n = 5$), and the window is **truncated** at the first and last channel,
# not wrapped. Here is the formula as a loop over channels, straight from the
# paper, next to the library's layer (`numpy_alexnet/layers/normalization.py`).

# %%
def lrn_paper(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """Section 3.3, one channel at a time: alpha multiplies the sum of squares."""
    N = a.shape[1]
    b = np.empty_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)      # truncated at the edges
        b[:, i] = a[:, i] / (k + alpha * np.sum(a[:, lo:hi + 1] ** 2, axis=1)) ** beta
    return b

# Activations of a trained conv1 on 0-255 pixels are tens to hundreds: use that scale,
# or the normalization (k = 2 dominates) does almost nothing and every convention looks alike.
a = np.maximum(rng.normal(0, 80, size=(2, 16, 5, 6)), 0)          # (N, C, H, W), after a ReLU
lrn = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)
err = rel_error(lrn.forward(a, train=True), lrn_paper(a))
print(f"LocalResponseNorm vs the paper's formula: relative error {err:.1e}   (expect ~1e-16)")
assert err < 1e-12

# %% [markdown]
# ## What it does: a strong neighbour suppresses you
#
# One pixel, 16 channels. Channel 7 has activity 100. In the first case its
# neighbours are silent; in the second, channels 5 to 9 are all at 100.

# %%
alone = np.zeros((1, 16, 1, 1)); alone[0, 7] = 100.0
crowd = np.zeros((1, 16, 1, 1)); crowd[0, 5:10] = 100.0
b_alone, b_crowd = lrn.forward(alone, train=True)[0, 7, 0, 0], lrn.forward(crowd, train=True)[0, 7, 0, 0]
print(f"channel 7 alone:          100 -> {b_alone:.2f}   (= 100 / (2 + 1e-4 * 100^2)^0.75 = 100 / 3^0.75)")
print(f"channel 7 among 4 equals: 100 -> {b_crowd:.2f}   (= 100 / (2 + 1e-4 * 5 * 100^2)^0.75 = 100 / 7^0.75)")
assert np.isclose(b_alone, 100 / 3 ** 0.75) and np.isclose(b_crowd, 100 / 7 ** 0.75)

# %% [markdown]
# And the truncation at the edges: channel 0's window holds channels 0, 1, 2
# only, so activity in channel 3 leaves channel 0 untouched but reaches
# channels 1 to 5.

# %%
x = np.ones((1, 8, 1, 1)); x[0, 3] = 300.0
changed = np.flatnonzero(~np.isclose(lrn.forward(x, train=True)[0, :, 0, 0], lrn.forward(np.ones((1, 8, 1, 1)), train=True)[0, :, 0, 0]))
print("channels whose output changes when channel 3 fires:", changed.tolist(), "  (expect [1, 2, 3, 4, 5])")
assert changed.tolist() == [1, 2, 3, 4, 5]

# %% [markdown]
# ### The picture: which channels each channel's window holds
#
# Row $i$ marks the channels $j$ whose activity changes output $i$: the
# library's layer is asked, by raising one channel at a time. With one group
# the window of 5 slides along 8 channels and is cut at channels 0 and 7. With
# `groups=2` (two towers of 4 channels, each normalized on its own, as the
# paper's code does it) the window also stops at the **tower edge** between
# channels 3 and 4.

# %%
def window_map(layer, C=8):
    """(C, C) bool: [i, j] is True when raising channel j changes output channel i."""
    base = layer.forward(np.ones((1, C, 1, 1)), train=False)[0, :, 0, 0]
    m = np.zeros((C, C), dtype=bool)
    for j in range(C):
        x = np.ones((1, C, 1, 1)); x[0, j] = 300.0
        m[:, j] = ~np.isclose(layer.forward(x, train=False)[0, :, 0, 0], base)
    m[np.arange(C), np.arange(C)] = True                  # a channel is always in its own window
    return m

maps = {"one group (the paper's text)": window_map(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1)),
        "groups=2 (the 2012 code: per tower)": window_map(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75, groups=2))}
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (title, m) in zip(axes, maps.items()):
    ax.imshow(m, cmap="Greens", vmin=0, vmax=1.3)
    ax.axvline(3.5, color="red", lw=2, ls="--"); ax.axhline(3.5, color="red", lw=2, ls="--")
    ax.set_xticks(range(8)); ax.set_yticks(range(8))
    ax.set_xlabel("input channel j"); ax.set_ylabel("output channel i"); ax.set_title(title)
fig.suptitle("LRN windows (n=5) over 8 channels; dashed: the tower edge")
plt.tight_layout(); plt.show()
for title, m in maps.items():
    print(f"{title}: window of channel 3 = {np.flatnonzero(m[3]).tolist()}")
assert np.flatnonzero(maps["groups=2 (the 2012 code: per tower)"][3]).tolist() == [1, 2, 3]


# %% [markdown]
# ## The alpha/n trap
#
# The paper's $\alpha$ multiplies the **sum**. Caffe's `LRN` layer and PyTorch's
# `torch.nn.LocalResponseNorm` divide their `alpha` by $n$ first:
#
# $$b_i = a_i \Big/ \Big(k + \frac{\alpha}{n} \sum_j a_j^2\Big)^{\beta}$$
#
# So copying the paper's `alpha=1e-4` into one of them gives a normalization
# five times weaker than the paper's. The paper's layer is
# `torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)` in PyTorch, and
# `local_size: 5, alpha: 0.0005, beta: 0.75, k: 2` in Caffe. (Caffe's own
# reference model `bvlc_alexnet` writes `alpha: 0.0001` and leaves `k` at its
# default of 1: not the paper's layer, whatever else it reproduces.)
# TensorFlow's `tf.nn.local_response_normalization` follows the paper's
# convention but takes `depth_radius`, the half-width:
# `depth_radius=2, bias=2, alpha=1e-4, beta=0.75`.
#
# Numerically, with activations of the size a trained conv1 produces:

# %%
def lrn_alpha_over_n(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """The Caffe/PyTorch convention: alpha is divided by n (the window is still truncated
    at the edges, and PyTorch divides by n even there, as here)."""
    return lrn_paper(a, n, k, alpha / n, beta)

paper = lrn.forward(a, train=True)                                    # the library: the paper's convention
misread = lrn_alpha_over_n(a, alpha=1e-4)                 # the paper's number in the other convention
fixed = lrn_alpha_over_n(a, alpha=5e-4)                   # alpha multiplied by n: the paper again
print(f"alpha=1e-4 read as alpha/n:  relative difference from the paper {rel_error(misread, paper):.3f}"
      f"  (outputs up to {np.max(misread / np.where(paper > 0, paper, 1)):.2f}x larger)")
print(f"alpha=5e-4 read as alpha/n:  relative difference from the paper {rel_error(fixed, paper):.1e}")
assert rel_error(misread, paper) > 0.05        # a visible, systematic difference
assert rel_error(fixed, paper) < 1e-12         # the same layer

# %% [markdown]
# If PyTorch is installed, its layer confirms it: `alpha=5e-4` reproduces the
# paper's normalization (this cell is skipped without PyTorch; the library
# never needs it).

# %%
try:
    import torch
except ImportError:
    torch = None
    print("optional: PyTorch is not installed, so the comparison is skipped")
if torch is not None:
    t = torch.nn.functional.local_response_norm(torch.tensor(a), size=5, alpha=5e-4, beta=0.75, k=2.0).numpy()
    t_wrong = torch.nn.functional.local_response_norm(torch.tensor(a), size=5, alpha=1e-4, beta=0.75, k=2.0).numpy()
    print(f"optional: torch alpha=5e-4 vs the paper: {rel_error(t, paper):.1e}   "
          f"torch alpha=1e-4 vs the paper: {rel_error(t_wrong, paper):.3f}")
    assert rel_error(t, paper) < 1e-12 and rel_error(t_wrong, paper) > 0.05

# %% [markdown]
# ## LRN backward
#
# Write $s_i = k + \alpha \sum_{j \in w(i)} a_j^2$ (the *scale*, kept from the
# forward pass), so $b_i = a_i s_i^{-\beta}$. Since $j \in w(i)$ exactly when
# $i \in w(j)$ (the window is symmetric),
#
# $$\frac{\partial L}{\partial a_j} = \frac{\partial L}{\partial b_j} s_j^{-\beta}
#  - 2\alpha\beta\, a_j \sum_{i \in w(j)} \frac{\partial L}{\partial b_i}\, \frac{b_i}{s_i}$$
#
# the same windowed channel sum as the forward pass, applied to
# $\partial L/\partial b \cdot b / s$. The check uses the paper's constants on
# large activations (where the second term matters) and a large $\alpha$ on
# unit-sized ones, 7 channels so the edge windows are exercised.
# **Expected:** relative errors near $10^{-10}$, below $10^{-7}$.

# %%
from numpy_alexnet.layers.normalization import channel_window_sum, lrn_forward, lrn_backward
show(channel_window_sum); show(lrn_forward); show(lrn_backward)

e1 = check_layer(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75), rng.normal(0, 80, size=(2, 7, 3, 4)))
e2 = check_layer(LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75), rng.standard_normal((2, 7, 3, 4)))
print(f"LRN dx, paper's constants, activations ~80: {e1['x']:.1e}")
print(f"LRN dx, alpha = 0.5, activations ~1:       {e2['x']:.1e}")
assert e1["x"] < 1e-7 and e2["x"] < 1e-7

# %% [markdown]
# ## Overlapping pooling (section 3.4)
#
# A pooling layer summarizes each $z \times z$ window, placed every $s$ pixels.
# Traditional pooling has $s = z$ (no overlap); AlexNet uses $z = 3$, $s = 2$.
# The output size is $\lfloor (H - z)/s \rfloor + 1$ (floor mode, as Caffe and
# PyTorch; cuda-convnet rounds up). In AlexNet the two choices give the same
# sizes, 55 -> 27, 27 -> 13, 13 -> 6; what changes is that each output sees a
# 3x3 neighbourhood and neighbouring windows share a row or column.

# %%
for H in (55, 27, 13):
    print(f"{H:>3} -> overlapping 3x3/2: {conv_output_size(H, 3, 2, 0):>2}    non-overlapping 2x2/2: {conv_output_size(H, 2, 2, 0):>2}")
assert [conv_output_size(H, 3, 2, 0) for H in (55, 27, 13)] == [27, 13, 6]
# The Figure-1 CIFAR net's pools, in floor mode (cuda-convnet's ceil mode gives 16, 8, 4):
print("CIFAR 32x32 through three 3x3/2 pools:", 32, "->", conv_output_size(32, 3, 2, 0), "->",
      conv_output_size(15, 3, 2, 0), "->", conv_output_size(7, 3, 2, 0))

# %% [markdown]
# How many windows does each input pixel fall in? The average pool's backward
# pass answers it: send 9 (= 3x3, undoing the division) back from every output,
# and each input receives 9/9 from each window containing it.

# %%
counts = AvgPool2D(kernel_size=3, stride=2)
counts.forward(np.zeros((1, 1, 7, 9)), train=True)
c = counts.backward(np.full((1, 1, 3, 4), 9.0))[0, 0]      # (7, 9): windows covering each pixel
print(c.astype(int))
assert c.max() == 4 and c.min() == 1                       # corners of overlaps are in 4 windows

# %% [markdown]
# ## The backward trap: add, do not assign
#
# In max pooling, the gradient of each output goes to the input that was the
# maximum of its window. With overlapping windows one input can be the maximum
# of several windows, and it must receive the **sum** of their gradients. Below,
# the largest value of a 5x5 input sits at the centre, which lies in all four
# 3x3/2 windows; with $\partial L/\partial\text{out} = 1$ everywhere, its
# gradient must be 4. The "assign" version, which writes each window's gradient
# into place, gets 1: a silent bug that a gradient check catches.

# %%
x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5) / 100
x[0, 0, 2, 2] = 1.0                                        # the maximum of all four windows
pool = MaxPool2D(kernel_size=3, stride=2)
print("forward (every window's max is the centre):", pool.forward(x, train=True)[0, 0].tolist())
dx = pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
print("library backward, gradient at the centre:", dx[2, 2])

def maxpool_backward_assign(x, dout, z=3, s=2):
    """The bug: '=' where '+=' belongs."""
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = x[0, 0, i * s:i * s + z, j * s:j * s + z]
            r, q = np.unravel_index(np.argmax(win), win.shape)
            dx[0, 0, i * s + r, j * s + q] = dout[0, 0, i, j]      # overwrites, never adds
    return dx

print("'assign' backward, gradient at the centre:", maxpool_backward_assign(x, np.ones((1, 1, 2, 2)))[0, 0, 2, 2])
assert dx[2, 2] == 4.0 and dx.sum() == 4.0

# %% [markdown]
# ### The picture: overlapping windows, and where the gradients land
#
# Left: a 7x9 input under 3x3 windows at stride 2 (3x4 outputs); each pixel's
# number is how many windows hold it (the count above), each window outlined.
# Right: a random input, $\partial L/\partial\text{out} = 1$ for all 12
# outputs, and the max-pool backward pass: every window sends its 1 to its
# maximum, so a pixel that wins two windows receives 2. The 12 units of
# gradient all arrive, some stacked.

# %%
from matplotlib.patches import Rectangle
xr = np.random.default_rng(5).permutation(63).reshape(1, 1, 7, 9).astype(np.float64)   # distinct values
mp = MaxPool2D(kernel_size=3, stride=2)
mp.forward(xr, train=True)
landed = mp.backward(np.ones((1, 1, 3, 4)))[0, 0]                                          # (7, 9)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, arr, title in ((axes[0], c, "windows holding each pixel (3x3, stride 2)"),
                       (axes[1], landed, "max-pool gradient landed (dout = 1 everywhere)")):
    ax.imshow(arr, cmap="Oranges", vmin=0, vmax=4.5)
    for (r, q), v in np.ndenumerate(arr):
        ax.text(q, r, f"{v:.0f}", ha="center", va="center", fontsize=9)
    ax.set_title(title); ax.set_xticks(range(9)); ax.set_yticks(range(7))
for oy in range(3):
    for ox in range(4):
        axes[0].add_patch(Rectangle((2 * ox - 0.45, 2 * oy - 0.45), 2.9, 2.9, fill=False,
                                    ec=plt.cm.tab20(oy * 4 + ox), lw=1.5))
for oy in range(3):
    for ox in range(4):                                   # box each window's maximum
        v = np.argmax(xr[0, 0, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3])
        r, q = 2 * oy + v // 3, 2 * ox + v % 3
        axes[1].add_patch(Rectangle((q - 0.5, r - 0.5), 1, 1, fill=False, ec="black", lw=1.5))
plt.tight_layout(); plt.show()
print(f"gradient sent 12, received {landed.sum():.0f}; pixels receiving 2 or more: {int((landed >= 2).sum())}")
assert landed.sum() == 12

# %% [markdown]
# ### The code
#
# The library's max-pool backward loops over the 3x3 window offsets, never over
# pixels; `+=` into strided slices is what adds the overlaps.

# %%
from numpy_alexnet.layers.pooling import maxpool_backward
show(maxpool_backward)

# %% [markdown]
# Ties: when a window holds equal maxima, the gradient goes to the first of
# them in row-major order (top-most, then left-most), as `argmax` picks it.
# That is a choice (the derivative does not exist there), which is why the
# gradient checks use inputs without ties.

# %%
flat = np.ones((1, 1, 3, 3))
pool.forward(flat, train=True)
print(pool.backward(np.ones((1, 1, 1, 1)))[0, 0])
assert pool.backward(np.ones((1, 1, 1, 1)))[0, 0, 0, 0] == 1.0

# %% [markdown]
# ## Check: gradients of the overlapping pools
#
# On an awkward shape (9x7, so height differs from width) with distinct inputs.
# **Expected:** relative errors near $10^{-11}$, below $10^{-7}$.

# %%
n = 2 * 3 * 9 * 7
x = (rng.permutation(n) - n / 2 + 0.5).reshape(2, 3, 9, 7) / n      # distinct values: no ties
e_max = check_layer(MaxPool2D(kernel_size=3, stride=2), x)["x"]
e_avg = check_layer(AvgPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7)))["x"]
print(f"MaxPool2D 3x3/2 dx: {e_max:.1e}    AvgPool2D 3x3/2 dx: {e_avg:.1e}   (expect < 1e-7)")
assert e_max < 1e-7 and e_avg < 1e-7


# %% [markdown]
# ## Exercises
#
# Solutions: `notebooks/solutions/02_lrn_and_pooling.py` (open it after trying).
#
# ### Exercise 2.1: max-pool backward with overlapping windows
#
# Write `maxpool_backward_loops(dout, x, size, stride)` for x (N, C, H, W) and
# dout (N, C, Ho, Wo): route each `dout[n, c, oy, ox]` to the maximum of its
# window (the first maximum in row-major order on a tie, as `np.argmax`
# picks it) and **add** where windows overlap. Loops over windows are fine.

# %%
def maxpool_backward_loops(dout, x, size, stride):
    """dout (N, C, Ho, Wo), x (N, C, H, W) -> dx (N, C, H, W)."""
    # your code here
    raise NotImplementedError

maxpool_backward_loops = solution(maxpool_backward_loops)


# %%
def test_maxpool_backward():
    r = np.random.default_rng(3)
    for shape, size, stride in (((2, 3, 9, 7), 3, 2), ((1, 2, 8, 8), 2, 2), ((1, 1, 5, 5), 3, 1)):
        xt = r.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)      # no ties
        layer = MaxPool2D(kernel_size=size, stride=stride)
        out = layer.forward(xt, train=True)
        dout = r.standard_normal(out.shape)
        want = layer.backward(dout)
        got = np.asarray(maxpool_backward_loops(dout, xt, size, stride))
        assert got.shape == want.shape, f"{size}x{size}/{stride}: dx shape {got.shape}, expected {want.shape}"
        err = rel_error(got, want)
        if err > 1e-12 and abs(got.sum() - dout.sum()) < 1e-9:
            raise AssertionError(f"{size}x{size}/{stride}: the gradient lands in the wrong places")
        assert err < 1e-12, (f"{size}x{size}/{stride}: relative error {err:.1e}; dout sums to {dout.sum():.3f} "
                             f"but dx to {got.sum():.3f}: overlapping windows must add, not assign")

check("exercise 2.1 (max-pool backward, overlapping)", test_maxpool_backward)

# %% [markdown]
# ### Exercise 2.2: LRN backward, the cross-channel term
#
# With $s_i = k + \alpha \sum_{j \in w(i)} a_j^2$ and $b_i = a_i s_i^{-\beta}$,
# the gradient has two terms: $\frac{\partial L}{\partial b_j} s_j^{-\beta}$ (the
# direct one) and the cross-channel term
# $-2\alpha\beta\, a_j \sum_{i \in w(j)} \frac{\partial L}{\partial b_i} \frac{b_i}{s_i}$,
# through which a channel's gradient reaches its neighbours. Write
# `lrn_cross_term(dout, a, b, s, n, alpha, beta)` (all arrays (N, C, H, W)),
# with the window $w(j)$ = channels $j - n/2$ to $j + n/2$, cut at 0 and
# $C - 1$. Write the window sum yourself (a loop over channels is fine).

# %%
def lrn_cross_term(dout, a, b, s, n, alpha, beta):
    """The second term of dL/da for LRN: -2 alpha beta a_j sum_{i in w(j)} dout_i b_i / s_i."""
    # your code here
    raise NotImplementedError

lrn_cross_term = solution(lrn_cross_term)


# %%
def test_lrn_cross_term():
    r = np.random.default_rng(4)
    for C, n, alpha in ((7, 5, 0.5), (4, 3, 0.2), (9, 5, 1e-4)):
        a = r.standard_normal((2, C, 3, 4)) * (80 if alpha < 1e-3 else 1)
        layer = LocalResponseNorm(n=n, k=2.0, alpha=alpha, beta=0.75)
        b = layer.forward(a, train=True)
        dout = r.standard_normal(a.shape)
        want = layer.backward(dout)
        s = 2.0 + alpha * sum(np.pad(a ** 2, ((0, 0), (n // 2, n // 2), (0, 0), (0, 0)))[:, d:d + C] for d in range(n))
        got = np.asarray(lrn_cross_term(dout, a, b, s, n, alpha, 0.75))
        assert got.shape == a.shape, f"shape {got.shape}, expected {a.shape}"
        err = rel_error(dout * s ** -0.75 + got, want)
        assert err < 1e-10, (f"C={C}, n={n}, alpha={alpha:g}: dL/da off by relative error {err:.1e} "
                             "(check the window's ends at channels 0 and C-1, and the sign)")

check("exercise 2.2 (LRN backward, cross-channel term)", test_lrn_cross_term)
