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
# # 1. The layers, one by one: forward, backward, and a gradient check
#
# AlexNet (Krizhevsky, Sutskever and Hinton, NIPS 2012) is built from a handful
# of layer kinds. Each one here is a class in `numpy_alexnet/layers/` with a `forward`
# that keeps in `self.cache` exactly what `backward` needs, and a `backward(dout)`
# that returns `dx` and fills `self.grads` (section numbers are the paper's):
#
# | layer | paper | module |
# |---|---|---|
# | `Conv2D` (with `groups`, the two towers) | 3.2, 3.5 | `conv.py` |
# | `ReLU`, `Tanh` | 3.1 | `activation.py` |
# | `LocalResponseNorm` | 3.3 | `normalization.py` (notebook 2) |
# | `MaxPool2D`, `AvgPool2D` (overlapping) | 3.4 | `pooling.py` (notebook 2) |
# | `Dropout` | 4.2 | `dropout.py` |
# | `Linear`, `Flatten` | 3.5 | `linear.py` |
# | `SoftmaxCrossEntropy` | 3.5 | `loss.py` |
#
# For each: what it computes, a call, and a **gradient check**: the analytic
# `backward` against central differences
# $\frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h}$,
# compared with the norm-wise relative error
# $\frac{\lVert a - b\rVert}{\lVert a\rVert + \lVert b\rVert}$ (`numpy_alexnet.gradcheck.rel_error`).
#
# **What to expect.** In float64 with $h = 10^{-5}$, a correct backward gives
# relative errors around $10^{-10}$ to $10^{-9}$; the tests demand below $10^{-7}$.
# A wrong backward gives $10^{-2}$ or worse. In float32, rounding alone gives about
# $10^{-3}$, which is why checks always run in float64.
#
# The derivations are written out in `docs/layers.md`.

# %%
import numpy as np
from nbtools import setup, check, solution, show
ROOT, OUT = setup("01_layers")

# %%
from numpy_alexnet.layers import (Conv2D, ReLU, Tanh, LocalResponseNorm, MaxPool2D, AvgPool2D,
                                  Dropout, Linear, Flatten, SoftmaxCrossEntropy, im2col, col2im)
from numpy_alexnet.gradcheck import check_layer, check_net, rel_error, numerical_gradient

rng = np.random.default_rng(0)
TOL = 1e-7                 # what the test suite demands of every backward pass, in float64
results = {}               # layer -> worst relative error, collected for the final check

def report(name, errors):
    """Print each relative error and keep the worst."""
    for key, err in errors.items():
        print(f"  {name:>22s} d{key:<2s} relative error {err:.2e}")
    results[name] = max(errors.values())

def spread(shape, gap=1e-3):
    """Distinct values, none near 0: no ReLU input on its kink, no near-tie in a max-pool window
    that the step h could flip (the gradient is not defined there, so the check would fail)."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n / 2 + 0.5) * gap
    v = v + np.sign(v) * gap / 2
    return rng.permutation(v).reshape(shape) * (3.0 / (n * gap))


# %% [markdown]
# ## Convolution (sections 3.2 and 3.5): im2col + one matrix product
#
# A convolution slides each of $F$ kernels ($C/G \times K_H \times K_W$) over the
# zero-padded input. `im2col` unfolds every receptive field into a column, so
# the whole layer is one matrix product per group:
#
# $$\text{out}[n, f, p] = \sum_k W[f, k]\, \text{cols}[n, k, p] + b[f]$$
#
# The backward pass is the same product transposed: $dW = \sum_{n,p} d\text{out}\;\text{cols}^T$,
# $d\text{cols} = W^T d\text{out}$, and `col2im` folds $d\text{cols}$ back into
# the image, **adding** where receptive fields overlap.
#
# The output size along one axis is $\lfloor (H + 2\,\text{pad} - K) / \text{stride} \rfloor + 1$.
# An awkward shape catches most bugs: height different from width, stride 2,
# padding 1 and `groups=2` (AlexNet's two towers).

# %%
x = rng.standard_normal((2, 4, 9, 6))                     # (N, C, H, W): H != W on purpose
cols = im2col(x, kh=3, kw=3, stride=2, pad=1)
print("im2col:", x.shape, "->", cols.shape, " = (C*KH*KW, N*Ho*Wo) = (4*3*3, 2*5*3)")

conv = Conv2D(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2,
              weight_std=0.5, bias=0.1, rng=rng, dtype=np.float64)
out = conv.forward(x, train=True)
print("Conv2D forward:", x.shape, "->", out.shape, "  W:", conv.params["W"].shape)

# %% [markdown]
# ### The picture: one receptive field, one column
#
# A 1-channel 5x6 image (values 0 to 29, so every pixel is its own number)
# and a 3x3 kernel with stride 1 and no padding give 3x4 = 12 output positions.
# `im2col` copies the 9 pixels under the window of output position $p$ into
# column $p$ of a 9x12 matrix. The highlighted window (output row 1, column 2)
# becomes the highlighted column 1*4 + 2 = 6; row $r = i K_W + j$ of the matrix
# holds the pixel at kernel offset $(i, j)$ of every window.

# %%
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

img = np.arange(30.0).reshape(1, 1, 5, 6)                  # (N, C, H, W) = (1, 1, 5, 6)
unrolled = im2col(img, kh=3, kw=3, stride=1, pad=0)        # (C*KH*KW, N*Ho*Wo) = (9, 12)
oy, ox, Wo = 1, 2, 4                                       # one output position, and Wo
fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [6, 12]})
a0.imshow(img[0, 0], cmap="Blues", vmin=-10, vmax=40)
a1.imshow(unrolled, cmap="Blues", vmin=-10, vmax=40)
for ax, arr in ((a0, img[0, 0]), (a1, unrolled)):
    for (r, c), v in np.ndenumerate(arr):
        ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(arr.shape[1])); ax.set_yticks(range(arr.shape[0]))
a0.add_patch(Rectangle((ox - 0.5, oy - 0.5), 3, 3, fill=False, ec="red", lw=2.5))
a1.add_patch(Rectangle((oy * Wo + ox - 0.5, -0.5), 1, 9, fill=False, ec="red", lw=2.5))
a0.set_title("image 5x6: the window of output (1, 2)")
a1.set_title("im2col: 9 kernel offsets x 12 output positions")
a1.set_xlabel("column p = output row * Wo + output column"); a1.set_ylabel("row r = i*KW + j")
plt.tight_layout(); plt.show()
print("column 6:", unrolled[:, 6].astype(int).tolist(), " = the window's pixels, row by row")
assert unrolled[:, oy * Wo + ox].tolist() == img[0, 0, oy:oy + 3, ox:ox + 3].ravel().tolist()

# %% [markdown]
# ### The code
#
# The library's `im2col` builds the same matrix without a loop: a strided
# *view* of the padded input, then one copy; `conv2d_forward` is then one
# matrix product per group.

# %%
from numpy_alexnet.layers.conv import conv2d_forward
show(im2col)
show(conv2d_forward)


# %% [markdown]
# Before trusting the fast version, compare it with the definition written as
# loops (slow and obviously right: the way the test suite's oracles work).

# %%
def conv_loops(x, W, b, stride, pad, groups):
    """The convolution straight from its definition: one output value at a time."""
    N, C, H, Wd = x.shape
    F, Cg, KH, KW = W.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - KH) // stride + 1, (Wd + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            g = f // (F // groups)                          # the group (tower) of kernel f
            for i in range(Ho):
                for j in range(Wo):
                    patch = xpad[n, g * Cg:(g + 1) * Cg, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, f, i, j] = np.sum(patch * W[f]) + b[f]
    return out

err = rel_error(out, conv_loops(x, conv.params["W"], conv.params["b"], 2, 1, 2))
print(f"forward vs loops: relative error {err:.1e}   (expect ~1e-16: the same sums in another order)")
assert err < 1e-12

# %% [markdown]
# `col2im` is the **adjoint** of `im2col`: for any image $x$ and columns $c$,
# $\langle \text{im2col}(x), c\rangle = \langle x, \text{col2im}(c)\rangle$. That identity is
# exactly what makes `col2im` the right backward pass for `im2col`, and it is a
# one-line check.

# %%
c = rng.standard_normal(cols.shape)
lhs, rhs = np.sum(im2col(x, kh=3, kw=3, stride=2, pad=1) * c), np.sum(x * col2im(c, x.shape, kh=3, kw=3, stride=2, pad=1))
print(f"<im2col(x), c> = {lhs:.12f}\n<x, col2im(c)> = {rhs:.12f}   relative difference {abs(lhs - rhs) / abs(lhs):.1e}")
assert abs(lhs - rhs) < 1e-10 * abs(lhs)

report("Conv2D (groups=2)", check_layer(conv, x))

# %% [markdown]
# ## ReLU and tanh (section 3.1)
#
# ReLU $f(x) = \max(0, x)$ passes the gradient where $x > 0$ and blocks it
# elsewhere; tanh's derivative is $1 - \tanh^2(x)$, computed from the cached
# output. ReLU's kink at 0 has no derivative, so its check uses inputs kept
# away from 0 (`spread`).

# %%
relu = ReLU()
xr = spread((3, 2, 4, 5))
print("ReLU forward keeps", int((relu.forward(xr, train=True) > 0).sum()), "of", xr.size, "values")
report("ReLU", check_layer(relu, xr))
report("Tanh", check_layer(Tanh(), rng.standard_normal((3, 2, 4, 5))))

# %% [markdown]
# ## Max and average pooling (section 3.4)
#
# Max pooling routes each output's gradient to the input that was the maximum
# of its window; average pooling spreads it evenly. With the paper's
# overlapping 3x3 windows at stride 2, one input can feed two windows, so the
# backward pass **adds**. Notebook 2 looks at this closely. Max pooling's check
# needs inputs without near-ties (`spread`).

# %%
report("MaxPool2D 3x3/2", check_layer(MaxPool2D(kernel_size=3, stride=2), spread((2, 3, 9, 7))))
report("AvgPool2D 3x3/2", check_layer(AvgPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7))))

# %% [markdown]
# ## Local response normalization (section 3.3)
#
# $b_i = a_i / (k + \alpha \sum_{j} a_j^2)^\beta$ over $n$ neighbouring channels.
# Notebook 2 is about this layer; here only its gradient check, with a large
# $\alpha = 0.5$ so that a window that is off by one channel would show.

# %%
report("LocalResponseNorm", check_layer(LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75),
                                        rng.standard_normal((2, 7, 3, 4))))

# %% [markdown]
# ## Dropout (section 4.2), in both modes
#
# Each hidden neuron is zeroed with probability 0.5 during training. The paper
# then uses every neuron at test time and multiplies its output by 0.5
# (`mode="paper"`, the default); most libraries instead divide by 0.5 during
# training and do nothing at test time (`mode="inverted"`). Both keep the
# *expected* activation the same in training and at test time.
#
# The gradient check holds the dropout mask fixed (`check_layer` restores the
# layer's random generator before every forward).

# %%
big = np.ones((2000, 500))
for mode in ("paper", "inverted"):
    d = Dropout(rate=0.5, mode=mode, seed=1)
    train_mean, test_mean = d.forward(big, train=True).mean(), d.forward(big, train=False).mean()
    print(f"{mode:>8s}: mean activation in training {train_mean:.4f}, at test time {test_mean:.4f}")
    assert abs(train_mean - test_mean) < 0.01       # equal in expectation
    report(f"Dropout ({mode})", check_layer(Dropout(rate=0.5, mode=mode, seed=3), rng.standard_normal((4, 9))))

# %% [markdown]
# ## Linear and Flatten (the fully connected fc6, fc7, fc8)
#
# $\text{out} = xW + b$, so $dx = d\text{out}\,W^T$, $dW = x^T d\text{out}$,
# $db = \sum_n d\text{out}$. `Flatten` is a reshape whose backward is the
# reverse reshape.

# %%
report("Linear", check_layer(Linear(in_features=7, out_features=5, weight_std=0.5, bias=0.2, rng=rng, dtype=np.float64),
                             rng.standard_normal((3, 7))))
report("Flatten", check_layer(Flatten(), rng.standard_normal((2, 3, 4, 5))))

# %% [markdown]
# ## Softmax cross-entropy (section 3.5)
#
# $L = -\frac{1}{N}\sum_n \log \text{softmax}(z_n)_{y_n}$ and
# $\partial L / \partial z = (\text{softmax}(z) - \text{onehot}(y)) / N$.
# Two numbers to know: with all logits equal, the loss is $\log K$
# ($\log 10 = 2.3026$ for CIFAR-10, $\log 1000 = 6.9078$ for ImageNet),
# which is what a freshly initialized network should print at its first step.

# %%
loss_fn = SoftmaxCrossEntropy()
labels = np.array([0, 3, 9, 4])
print(f"loss at equal logits: {loss_fn.forward(np.zeros((4, 10)), labels):.4f}   (expect log 10 = {np.log(10):.4f})")
assert abs(loss_fn.forward(np.zeros((4, 10)), labels) - np.log(10)) < 1e-12

z = rng.standard_normal((4, 10))
loss_fn.forward(z, labels)
dz = loss_fn.backward()
numeric = numerical_gradient(lambda: float(loss_fn.forward(z, labels)), z)
report("SoftmaxCrossEntropy", {"z": rel_error(dz, numeric)})

# %% [markdown]
# ## A whole small network, end to end
#
# `check_net` runs the same check through a whole `Sequential` under the loss:
# a tiny network with AlexNet's shape (strided conv, LRN, overlapping pools,
# a grouped conv, a conv that crosses the towers, dropout, fully connected
# layers) on a 23x17 input.

# %%
from numpy_alexnet.models import build

tiny_spec = [
    ("conv1", "conv", dict(in_channels=3, out_channels=4, kernel_size=5, stride=2, padding=1, weight_std=0.3)),
    ("relu1", "relu", {}),
    ("norm1", "lrn", dict(n=3, k=1.0, alpha=0.3, beta=0.75)),
    ("pool1", "maxpool", dict(kernel_size=3, stride=2)),
    ("conv2", "conv", dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2, weight_std=0.3, bias=0.1)),
    ("relu2", "relu", {}),
    ("conv3", "conv", dict(in_channels=6, out_channels=4, kernel_size=3, padding=1, weight_std=0.3)),
    ("tanh3", "tanh", {}),
    ("pool3", "avgpool", dict(kernel_size=3, stride=2)),
    ("flatten", "flatten", {}),
    ("fc6", "linear", dict(in_features=4 * 2 * 1, out_features=7, weight_std=0.3, bias=0.1)),
    ("relu6", "relu", {}),
    ("drop6", "dropout", dict(rate=0.5)),
    ("fc8", "linear", dict(in_features=7, out_features=3, weight_std=0.3)),
]
tiny = build(tiny_spec, input_shape=(3, 23, 17), seed=3, dtype=np.float64)
print(tiny.summary())
errors = check_net(tiny, rng.standard_normal((2, 3, 23, 17)), np.array([0, 2]))
report("whole tiny net", errors)

# %% [markdown]
# ## Why float64: the same check in float32
#
# The same convolution's check in float32, with the same step $h = 10^{-5}$,
# shows the rounding floor: float32 keeps about 7 digits, so $x \pm h$ is
# itself rounded and $f(x+h) - f(x-h)$ loses most of its digits. The error
# rises to around $10^{-3}$ or $10^{-2}$ although nothing is wrong.

# %%
conv32 = Conv2D(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2,
                weight_std=0.5, bias=0.1, rng=np.random.default_rng(1), dtype=np.float32)
err32 = check_layer(conv32, rng.standard_normal((2, 4, 9, 6)).astype(np.float32))
print("float32, h = 1e-5: worst relative error above 1e-5:", max(err32.values()) > 1e-5,
      "  (around 1e-3 to 1e-2, depending on the machine's rounding)")
assert max(err32.values()) > 1e-5        # far above the float64 errors: rounding, not a bug

# %% [markdown]
# ## Check: every backward pass agrees with central differences
#
# **Expected:** every relative error below $10^{-7}$, most near $10^{-10}$.

# %%
for name, err in sorted(results.items(), key=lambda kv: kv[1]):
    print(f"{name:>22s}  worst relative error {err:.2e}")
worst = max(results.values())
print(f"\nworst of all: {worst:.2e}  (expect < 1e-7)")
assert worst < TOL, results


# %% [markdown]
# ## Exercises
#
# Write the code, run the cell, then run the check cell below it: it prints
# `pass`, or what is wrong. Solutions are in `notebooks/solutions/01_layers.py`;
# open it after trying.
#
# ### Exercise 1.1: im2col's index arithmetic, with loops
#
# Write `im2col_loops(x, kh, kw, stride, pad)`: for `x` of shape (N, C, H, W)
# return `cols` of shape (C*KH*KW, N*Ho*Wo) where
# `cols[c*KH*KW + i*KW + j, (n*Ho + oy)*Wo + ox]` is the padded input's pixel
# `(oy*stride + i, ox*stride + j)` of channel `c` of example `n`, with
# Ho = (H + 2 pad - KH) // stride + 1 and Wo likewise. Loops are fine here:
# this is the definition the fast version must agree with.

# %%
def im2col_loops(x, kh, kw, stride, pad):
    """x (N, C, H, W) -> cols (C*KH*KW, N*Ho*Wo), written with loops."""
    # your code here
    raise NotImplementedError

im2col_loops = solution(im2col_loops)    # the tests fill in the solution; a learner's stays


# %%
def test_im2col_loops():
    xt = np.random.default_rng(1).standard_normal((2, 3, 7, 5))      # H != W
    for kh, kw, stride, pad in ((3, 3, 1, 0), (3, 2, 2, 1), (5, 5, 2, 2)):
        got = np.asarray(im2col_loops(xt, kh, kw, stride, pad))
        want = im2col(xt, kh=kh, kw=kw, stride=stride, pad=pad)
        assert got.shape == want.shape, f"kh={kh} kw={kw} stride={stride} pad={pad}: shape {got.shape}, expected {want.shape}"
        err = rel_error(got, want)
        assert err < 1e-12, f"kh={kh} kw={kw} stride={stride} pad={pad}: relative error {err:.1e} against im2col"

check("exercise 1.1 (im2col with loops)", test_im2col_loops)

# %% [markdown]
# ### Exercise 1.2: the fully connected layer's backward pass
#
# `Linear` computes `out = x @ W + b` for x (N, D), W (D, M), b (M,). Write
# `linear_backward(dout, x, W)` returning `(dx, dW, db)`. The check compares
# with central differences (`numerical_gradient`) in float64.

# %%
def linear_backward(dout, x, W):
    """dout (N, M), x (N, D), W (D, M) -> dx (N, D), dW (D, M), db (M,)."""
    # your code here
    raise NotImplementedError

linear_backward = solution(linear_backward)


# %%
def test_linear_backward():
    r = np.random.default_rng(2)
    xt, Wt, bt, dout = r.standard_normal((4, 6)), r.standard_normal((6, 3)), r.standard_normal(3), r.standard_normal((4, 3))
    f = lambda: float(np.sum((xt @ Wt + bt) * dout))           # d f / d(out) = dout
    got = linear_backward(dout, xt, Wt)
    assert isinstance(got, tuple) and len(got) == 3, "return three arrays: (dx, dW, db)"
    for name, g, v in zip(("dx", "dW", "db"), got, (xt, Wt, bt)):
        g = np.asarray(g)
        assert g.shape == v.shape, f"{name} has shape {g.shape}, expected {v.shape}"
        err = rel_error(g, numerical_gradient(f, v))
        assert err < 1e-7, f"{name}: relative error {err:.1e} against central differences (expect < 1e-7)"

check("exercise 1.2 (Linear backward)", test_linear_backward)
