# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: numpy_alexnet,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
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
# For each: what it computes and how it behaves, then you write its forward
# and backward pass (exercises 2.1 to 2.5, in the library's signatures, so that
# notebook 7 can train on them), then the library's code and its gradient
# check. Two details catch implementations: for LRN, which of two conventions
# `alpha` follows; for pooling, that the backward pass must **add** where
# windows overlap.

# %%
import numpy as np
import matplotlib.pyplot as plt
from nbtools import setup, check, solution, show
ROOT, OUT = setup("02_lrn_and_pooling")
import checks.lrn_and_pooling as checks  # the exercises' checks: notebooks/checks/lrn_and_pooling.py

# %%
from numpy_alexnet.layers import LocalResponseNorm, MaxPool2D, AvgPool2D
from numpy_alexnet.layers import normalization as library_lrn, pooling as library_pooling
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
# not wrapped. The library's `LocalResponseNorm` computes it
# (`numpy_alexnet/layers/normalization.py`); its behaviour first.
#
# ## What it does: a strong neighbour suppresses you
#
# One pixel, 16 channels. Channel 7 has activity 100. In the first case its
# neighbours are silent; in the second, channels 5 to 9 are all at 100.

# %%
lrn = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)
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
# library's layer is asked, by raising one channel at a time. With one window
# over all channels, the window of 5 slides along 8 channels and is cut at
# channels 0 and 7. The paper's text does not say what happens at the boundary
# between its two GPUs' towers; the 2012 code (notebook 6) normalizes each
# tower's channels on their own, as a tower on one GPU must, and the library's
# `alexnet()` does the same: `groups=2` (two towers of 4 channels here), where
# the window also stops at the **tower edge** between channels 3 and 4. Caffe's
# one-device AlexNet runs one window over all channels.

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

maps = {"one window (Caffe's one-device AlexNet)": window_map(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1)),
        "groups=2 (the 2012 code; the library's alexnet())": window_map(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75, groups=2))}
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (title, m) in zip(axes, maps.items()):
    ax.imshow(m, cmap="Greens", vmin=0, vmax=1.3)
    ax.axvline(3.5, color="red", lw=2, ls="--"); ax.axhline(3.5, color="red", lw=2, ls="--")
    ax.set_xticks(range(8)); ax.set_yticks(range(8))
    ax.set_xlabel("input channel j"); ax.set_ylabel("output channel i"); ax.set_title(title, fontsize=10)
fig.suptitle("LRN windows (n=5) over 8 channels; dashed: the tower edge")
plt.tight_layout(); plt.show()
for title, m in maps.items():
    print(f"{title}: window of channel 3 = {np.flatnonzero(m[3]).tolist()}")
assert np.flatnonzero(maps["groups=2 (the 2012 code; the library's alexnet())"][3]).tolist() == [1, 2, 3]


# %% [markdown]
# ## Two conventions for alpha
#
# The paper's formula puts $\alpha$ on the **sum**. Caffe's `LRN` layer,
# PyTorch's `torch.nn.LocalResponseNorm`, and the 2012 code itself (notebook 6:
# its `scale=0.0001` is divided by the window size before use) divide their
# `alpha` by $n$ first:
#
# $$b_i = a_i \Big/ \Big(k + \frac{\alpha}{n} \sum_j a_j^2\Big)^{\beta}$$
#
# Neither is a bug; the trap is carrying a number from one convention to the
# other. The paper's text read literally is
# `torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)` in PyTorch and
# `local_size: 5, alpha: 0.0005, beta: 0.75, k: 2` in Caffe; the 2012 code's
# layer is `alpha=1e-4` in those (and `alpha=2e-5` in the paper's convention,
# which this library follows). (Caffe's reference model `bvlc_alexnet` writes
# `alpha: 0.0001` and leaves `k` at its default of 1.) TensorFlow's
# `tf.nn.local_response_normalization` puts alpha on the sum, as the paper does,
# but takes `depth_radius`, the half-width: `depth_radius=2, bias=2, alpha=1e-4, beta=0.75`.
#
# Numerically, with activations of the size a trained conv1 produces (tens to
# hundreds; at unit size $k = 2$ dominates and every convention looks alike):

# %%
a = np.maximum(rng.normal(0, 80, size=(2, 16, 5, 6)), 0)          # (N, C, H, W), after a ReLU
paper = lrn.forward(a, train=True)                                # alpha on the sum: the paper's text
over_n = LocalResponseNorm(n=5, k=2.0, alpha=1e-4 / 5, beta=0.75).forward(a, train=True)   # alpha/n, alpha = 1e-4
print(f"alpha = 1e-4 divided by n (the 2012 code, Caffe, PyTorch) against the paper's text: "
      f"relative difference {rel_error(over_n, paper):.3f}, outputs up to "
      f"{np.max(over_n / np.where(paper > 0, paper, 1)):.2f}x larger")
assert rel_error(over_n, paper) > 0.05        # a visible, systematic difference

# %% [markdown]
# If PyTorch is installed, its layer confirms it: `alpha=5e-4` reproduces the
# paper's formula, `alpha=1e-4` the 2012 code's (this cell is skipped without
# PyTorch; the library never needs it).

# %%
try:
    import torch
except ImportError:
    torch = None
    print("optional: PyTorch is not installed, so the comparison is skipped")
if torch is not None:
    t = torch.nn.functional.local_response_norm(torch.tensor(a), size=5, alpha=5e-4, beta=0.75, k=2.0).numpy()
    t_code = torch.nn.functional.local_response_norm(torch.tensor(a), size=5, alpha=1e-4, beta=0.75, k=2.0).numpy()
    print(f"optional: torch alpha=5e-4 vs the paper's text: {rel_error(t, paper):.1e}   "
          f"torch alpha=1e-4 vs alpha/n here: {rel_error(t_code, over_n):.1e}")
    assert rel_error(t, paper) < 1e-12 and rel_error(t_code, over_n) < 1e-12

# %% [markdown]
# ### Exercise 2.1: LRN forward
#
# Write `lrn_forward(x, n, k, alpha, beta)` for x (N, C, H, W), returning
# `(out, scale)`: out as the formula above (alpha on the sum, the window cut at
# channels 0 and C-1), and `scale` $= k + \alpha \sum_{j \in w(i)} x_j^2$, the
# denominator before the power, which the backward pass needs. A loop over the
# channels, or over the $n$ window offsets, is fine. Keep `x`'s dtype.

# %% tags=["exercise"]
def lrn_forward(x, n, k, alpha, beta):
    """x (N, C, H, W) -> (out, scale), scale = k + alpha * (the window's sum of squares)."""
    # your code here
    raise NotImplementedError

lrn_forward = solution(lrn_forward)


# %%
check("exercise 2.1 (LRN forward)", checks.test_lrn_forward)

# %% [markdown]
# ## LRN backward
#
# Write $s_i = k + \alpha \sum_{j \in w(i)} a_j^2$ (the scale), so
# $b_i = a_i s_i^{-\beta}$. The chain rule gives
# $\frac{\partial L}{\partial a_j} = \sum_i \frac{\partial L}{\partial b_i} \frac{\partial b_i}{\partial a_j}$.
# Work out $\partial b_i / \partial a_j$ in its two cases: $i = j$ ($a_j$ appears
# in $b_j$ directly, and in $s_j$), and $i \ne j$ ($a_j$ appears in $s_i$ exactly
# when $j \in w(i)$). Then use that the window is symmetric, $j \in w(i)$
# exactly when $i \in w(j)$, to write the sum over $i$ as the same windowed
# channel sum as the forward pass, applied to something other than $a^2$.
#
# ### Exercise 2.2: LRN backward, with the cross-channel term
#
# Write `lrn_backward(dout, x, out, scale, n, k, alpha, beta)`, all arrays
# (N, C, H, W) (`out` and `scale` as the forward returned them), returning dx.
# The check uses a large $\alpha = 0.5$ (a window off by one channel shows) and
# the paper's constants on activations ~80, where the cross-channel term
# matters, with 3 to 9 channels, so that the edge windows are exercised.

# %% tags=["exercise"]
def lrn_backward(dout, x, out, scale, n, k, alpha, beta):
    """dout, x, out, scale (N, C, H, W) -> dx (N, C, H, W)."""
    # your code here
    raise NotImplementedError

lrn_backward = solution(lrn_backward)


# %%
check("exercise 2.2 (LRN backward)", checks.test_lrn_backward)

# %% [markdown]
# The library's kernels, and its layer's gradient check, with the paper's
# constants on activations ~80 and with $\alpha = 0.5$ on unit ones, 7 channels.
# **Expected:** relative errors near $10^{-10}$, below $10^{-7}$.

# %%
show(library_lrn.channel_window_sum); show(library_lrn.lrn_forward); show(library_lrn.lrn_backward)

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
# PyTorch; cuda-convnet rounds up, notebook 6). In AlexNet the two give the same
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
# ### Exercise 2.3: max-pool forward
#
# Write `maxpool_forward(x, kh, kw, stride)` for x (N, C, H, W), returning
# `(out, state)`: out (N, C, Ho, Wo) the maximum of each KH x KW window, and
# `state`, what your backward needs. As for `im2col`, loop over the KH\*KW
# window offsets only: offset $(i, j)$ of every window at once is
# `x[:, :, i:i + stride*Ho:stride, j:j + stride*Wo:stride]`, and a running
# maximum over the offsets gives every window's maximum.

# %% tags=["exercise"]
def maxpool_forward(x, kh, kw, stride):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), state for the backward)."""
    # your code here
    raise NotImplementedError

maxpool_forward = solution(maxpool_forward)


# %%
check("exercise 2.3 (max-pool forward)", checks.test_maxpool_forward)

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
# Ties: when a window holds equal maxima, the derivative does not exist; the
# library sends the gradient to the first of them in row-major order (top-most,
# then left-most), as `np.argmax` picks it, and to that one only. The gradient
# checks use inputs without ties for that reason.

# %%
flat = np.ones((1, 1, 3, 3))
pool.forward(flat, train=True)
print(pool.backward(np.ones((1, 1, 1, 1)))[0, 0])
assert pool.backward(np.ones((1, 1, 1, 1)))[0, 0, 0, 0] == 1.0

# %% [markdown]
# ### Exercise 2.4: max-pool backward with overlapping windows
#
# Write `maxpool_backward(dout, state, x_shape, kh, kw, stride)` for dout
# (N, C, Ho, Wo), returning dx (N, C, H, W): each `dout[n, c, oy, ox]` goes to
# the maximum of its window, to the first maximum in row-major order on a tie,
# and overlapping windows **add**. Loop over the window offsets only, in
# row-major order; keep track of the windows already routed so that a tie's
# later maxima get nothing.

# %% tags=["exercise"]
def maxpool_backward(dout, state, x_shape, kh, kw, stride):
    """dout (N, C, Ho, Wo) -> dx (N, C, H, W)."""
    # your code here
    raise NotImplementedError

maxpool_backward = solution(maxpool_backward)


# %%
check("exercise 2.4 (max-pool backward)", checks.test_maxpool_backward)

# %% [markdown]
# ### Exercise 2.5: average pooling, forward and backward
#
# The Figure-1 network pools its second and third layers by the **mean** of
# each 3x3 window. Write `avgpool_forward(x, kh, kw, stride)`, returning
# `(out, state)` (nothing is needed later: `None` will do), and
# `avgpool_backward(dout, state, x_shape, kh, kw, stride)`. Derive the backward:
# how does each input of a window change the window's mean?

# %% tags=["exercise"]
def avgpool_forward(x, kh, kw, stride):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), state for the backward)."""
    # your code here
    raise NotImplementedError

def avgpool_backward(dout, state, x_shape, kh, kw, stride):
    """dout (N, C, Ho, Wo) -> dx (N, C, H, W)."""
    # your code here
    raise NotImplementedError

avgpool_forward, avgpool_backward = solution(avgpool_forward), solution(avgpool_backward)


# %%
check("exercise 2.5 (average pooling)", checks.test_avgpool)

# %% [markdown]
# ## The library's pooling, and its gradient check
#
# Its max-pool backward loops over the 3x3 window offsets, never over pixels;
# `+=` into strided slices is what adds the overlaps. Checked on an awkward
# shape (9x7, so height differs from width) with distinct inputs.
# **Expected:** relative errors near $10^{-11}$, below $10^{-7}$.

# %%
show(library_pooling.maxpool_forward)
show(library_pooling.maxpool_backward)
n = 2 * 3 * 9 * 7
x = (rng.permutation(n) - n / 2 + 0.5).reshape(2, 3, 9, 7) / n      # distinct values: no ties
e_max = check_layer(MaxPool2D(kernel_size=3, stride=2), x)["x"]
e_avg = check_layer(AvgPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7)))["x"]
print(f"MaxPool2D 3x3/2 dx: {e_max:.1e}    AvgPool2D 3x3/2 dx: {e_avg:.1e}   (expect < 1e-7)")
assert e_max < 1e-7 and e_avg < 1e-7
