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
# # 1. The layers, one by one: you write each forward and backward pass
#
# AlexNet (Krizhevsky, Sutskever and Hinton, NIPS 2012) is built from a handful
# of layer kinds. Each is a class in `numpy_alexnet/layers/` whose `forward`
# keeps in `self.cache` what `backward` needs, and whose `backward(dout)`
# returns `dx` and fills `self.grads`. The arithmetic itself sits in a few
# functions, the layer's *kernels* (section numbers are the paper's):
#
# | layer | paper | kernels | where you write them |
# |---|---|---|---|
# | `Conv2D` (with `groups`, the two towers) | 3.2, 3.5 | `im2col`, `col2im`, `conv2d_forward`, `conv2d_backward` | here, 1.1 to 1.4 |
# | `ReLU`, `Tanh` | 3.1 | `relu_forward`, `relu_backward`, `tanh_forward`, `tanh_backward` | here, 1.5 and 1.6 |
# | `Linear` (fc6, fc7, fc8) | 3.5 | `linear_forward`, `linear_backward` | here, 1.7 |
# | `SoftmaxCrossEntropy` | 3.5 | (the loss) | here, 1.8 |
# | `MaxPool2D`, `AvgPool2D` (overlapping) | 3.4 | `maxpool_forward`, ... | notebook 2 |
# | `LocalResponseNorm` | 3.3 | `lrn_forward`, `lrn_backward` | notebook 2 |
# | `MomentumSGD` | 5 | `momentum_update` | notebook 4 |
# | `Dropout` | 4.2 | (the layer's own lines) | notebook 6 |
#
# You write each kernel with the library's own signature, so that in notebook
# 7 your functions, registered as a backend of their own, train a network.
# Each exercise gives the forward's definition and asks you to **derive** the
# backward pass; its check cell compares your function with the library on
# several shapes (height different from width, stride 2, padding, groups=2)
# and with central differences, and names the mistake where it recognizes it.
# After each check, the library's own code and its gradient check.
#
# Write the code, run the cell, then run the check cell below it: it prints
# `pass`, `not attempted`, or what is wrong. Solutions are in
# `notebooks/solutions/01_layers.py`; open it after trying. The derivations are
# in `docs/layers.md`, to compare with yours, and `docs/reading.md` lists, in
# the order they run, the library's functions of one whole training step.

# %%
import numpy as np
import matplotlib.pyplot as plt
from nbtools import setup, check, solution, show
ROOT, OUT = setup("01_layers")
import checks.layers as checks          # the exercises' checks: notebooks/checks/layers.py

# %% [markdown]
# ## The gradient check
#
# A backward pass is checked against central differences,
# $\frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h}$,
# compared with the norm-wise relative error
# $\frac{\lVert a - b\rVert}{\lVert a\rVert + \lVert b\rVert}$. `check_layer`
# takes the loss $L = \sum \text{forward}(x) \cdot R$ for a fixed random $R$,
# so that $\partial L / \partial \text{out} = R$ reaches every output:

# %%
from numpy_alexnet import gradcheck
show(gradcheck.rel_error)
show(gradcheck.numerical_gradient)
show(gradcheck.check_layer)

# %% [markdown]
# **What to expect.** In float64 with $h = 10^{-5}$, a correct backward gives
# relative errors around $10^{-10}$ to $10^{-9}$; the tests demand below $10^{-7}$.
# A wrong backward gives $10^{-2}$ or worse. In float32, rounding alone gives about
# $10^{-3}$, which is why checks always run in float64 (the last section shows it).

# %%
from numpy_alexnet.layers import (Conv2D, ReLU, Tanh, LocalResponseNorm, MaxPool2D, AvgPool2D,
                                  Dropout, Linear, Flatten, SoftmaxCrossEntropy)
from numpy_alexnet.layers import conv as library_conv
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
# ## Convolution (sections 3.2 and 3.5): im2col and one matrix product
#
# A convolution slides each of $F$ kernels ($C/G \times K_H \times K_W$) over the
# zero-padded input $x_p$:
#
# $$\text{out}[n, f, y, x] = b[f] + \sum_{c, i, j} W[f, c, i, j]\; x_p[n,\, c,\, y s + i,\, x s + j]$$
#
# with stride $s$, for $H_o = \lfloor (H + 2\,\text{pad} - K_H) / s \rfloor + 1$ output
# rows and $W_o$ likewise. `im2col` unfolds every receptive field into a column of
# one matrix, `cols`, of shape $(C K_H K_W,\; N H_o W_o)$: row $(c, i, j)$, column
# $(n, y, x)$ holds $x_p[n, c, ys + i, xs + j]$. The kernels as rows, $W$ reshaped to
# $(F, C K_H K_W)$, then give every output of the whole batch in one product,
# $W \cdot \text{cols}$.
#
# ### The picture: one receptive field, one column
#
# A 1-channel 5x6 image (values 0 to 29, so every pixel is its own number)
# and a 3x3 kernel with stride 1 and no padding give 3x4 = 12 output positions.
# The 9 pixels under the window of output position $p$ become column $p$ of a
# 9x12 matrix. The highlighted window (output row 1, column 2) becomes the
# highlighted column 1*4 + 2 = 6; row $r = i K_W + j$ of the matrix holds the
# pixel at kernel offset $(i, j)$ of every window.

# %%
from matplotlib.patches import Rectangle

img = np.arange(30.0).reshape(1, 1, 5, 6)                  # (N, C, H, W) = (1, 1, 5, 6)
unrolled = library_conv.im2col(img, 3, 3, 1, 0).reshape(9, 12)   # (C*KH*KW, N*Ho*Wo) = (9, 12)
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
# ### Exercise 1.1: im2col
#
# Write `im2col(x, kh, kw, stride, pad)`: for `x` of shape (N, C, H, W) return
# `cols` of shape (C\*KH\*KW, N\*Ho\*Wo), rows in the order (C, KH, KW) and
# columns in the order (N, Ho, Wo), as above. Loop over the KH\*KW kernel
# offsets only, never over pixels or images: offset $(i, j)$ of every window at
# once is one strided slice of the padded input,
# `xp[:, :, i:i + stride*Ho:stride, j:j + stride*Wo:stride]`, of shape
# (N, C, Ho, Wo). (An array of shape (C, KH, KW, N, Ho, Wo), reshaped at the
# end, keeps the orders straight.) The check counts the lines of your code
# that run: a loop over pixels shows. Keep `x`'s dtype.

# %% tags=["exercise"]
def im2col(x, kh, kw, stride, pad):
    """x (N, C, H, W) -> cols (C*KH*KW, N*Ho*Wo): rows ordered (C, KH, KW), columns (N, Ho, Wo)."""
    # your code here
    raise NotImplementedError

im2col = solution(im2col)    # the tests fill in the solution; a learner's stays


# %%
check("exercise 1.1 (im2col)", checks.test_im2col)

# %% [markdown]
# ### Exercise 1.2: the convolution's forward pass, with groups
#
# Write `conv2d_forward(x, W, b, stride, pad, groups)` for x (N, C, H, W),
# W (F, C/G, KH, KW) and b (F,), returning `(out, state)`: out of shape
# (N, F, Ho, Wo), and `state`, whatever your backward pass will need (the
# columns and `x.shape` will do). Use your `im2col`.
#
# With `groups=G` (AlexNet's two towers are `groups=2`), kernels
# $f = g F/G, \dots, (g+1) F/G - 1$ see only the channels
# $c = g C/G, \dots, (g+1) C/G - 1$ of their group $g$. Since the rows of `cols`
# run channel by channel, the rows of group $g$ are one block: `cols` reshaped
# to (G, C/G·KH·KW, N·Ho·Wo) and W to (G, F/G, C/G·KH·KW) make it one matmul
# per group (`@` on the stacks). The product's columns run (n, y, x): reorder
# to (N, F, Ho, Wo).

# %% tags=["exercise"]
def conv2d_forward(x, W, b, stride, pad, groups):
    """x (N, C, H, W), W (F, C/G, KH, KW), b (F,) -> (out (N, F, Ho, Wo), state for the backward)."""
    # your code here
    raise NotImplementedError

conv2d_forward = solution(conv2d_forward)


# %%
check("exercise 1.2 (convolution forward)", checks.test_conv2d_forward)

# %% [markdown]
# The library's version: a strided *view* of the padded input, laid out
# (C, KH, KW, N, Ho, Wo) by its strides, then one copy; the forward is the
# same product per group.

# %%
show(library_conv.im2col)
show(library_conv.conv2d_forward)


# %% [markdown]
# Before trusting a fast version, compare it with the definition written as
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

x = rng.standard_normal((2, 4, 9, 6))                     # (N, C, H, W): H != W on purpose
conv = Conv2D(4, 6, 3, stride=2, padding=1, groups=2, weight_std=0.5, bias=0.1, rng=rng, dtype=np.float64)
out = conv.forward(x, train=True)
err = rel_error(out, conv_loops(x, conv.params["W"], conv.params["b"], 2, 1, 2))
print("Conv2D forward:", x.shape, "->", out.shape, "  W:", conv.params["W"].shape)
print(f"forward vs loops: relative error {err:.1e}   (expect ~1e-16: the same sums in another order)")
assert err < 1e-12

# %% [markdown]
# ### The backward pass
#
# Per group, the forward is $\text{out} = W \cdot \text{cols} + b$ with $W$ of
# shape (F/G, C/G·KH·KW) and `cols` of shape (C/G·KH·KW, N·Ho·Wo):
# $\text{out}[f, p] = \sum_k W[f, k]\, \text{cols}[k, p] + b[f]$. Given
# $\delta\text{out} = \partial L / \partial \text{out}$, the chain rule gives
# $\partial L / \partial W[f, k] = \sum_p \delta\text{out}[f, p]\; \partial\text{out}[f, p] / \partial W[f, k]$,
# and likewise for $b$ and `cols`. Work out the three derivatives; each sum is a
# matrix product or a plain sum.
#
# That gives $\delta\text{cols}$, the gradient of the columns. Each entry of
# `cols` is a copy of one pixel of $x_p$, and a pixel is copied into every column
# whose window covers it (several, where windows overlap). So the pixel's
# gradient is the **sum** of the gradients of all its copies: `col2im` folds the
# columns back onto the image, adding, and crops the padding. It is the adjoint
# (transpose) of `im2col`: $\langle \text{im2col}(x), c\rangle = \langle x, \text{col2im}(c)\rangle$
# for any $x$ and $c$.
#
# ### Exercise 1.3: col2im
#
# Write `col2im(cols, x_shape, kh, kw, stride, pad)`: cols (C\*KH\*KW, N\*Ho\*Wo),
# laid out as your `im2col` makes them, to dx of shape `x_shape` = (N, C, H, W).
# Again loop over the KH\*KW offsets only (`+=` into a strided slice), and crop
# the padding at the end; `pad` may be 0.

# %% tags=["exercise"]
def col2im(cols, x_shape, kh, kw, stride, pad):
    """cols (C*KH*KW, N*Ho*Wo) -> dx (N, C, H, W): each column added back where its window lies."""
    # your code here
    raise NotImplementedError

col2im = solution(col2im)


# %%
check("exercise 1.3 (col2im)", checks.test_col2im)

# %% [markdown]
# ### Exercise 1.4: the convolution's backward pass
#
# Write `conv2d_backward(dout, state, W, stride, pad, groups, input_grad=True)`
# for dout (N, F, Ho, Wo), returning `(dx, dW, db)` with the shapes of x, W and
# b; `state` is what your forward returned. With `input_grad=False` the first
# layer of a network skips dx (nothing needs the gradient of the images):
# return `None` in its place. Use your `col2im`.

# %% tags=["exercise"]
def conv2d_backward(dout, state, W, stride, pad, groups, input_grad=True):
    """dout (N, F, Ho, Wo) -> (dx (N, C, H, W) or None, dW (F, C/G, KH, KW), db (F,))."""
    # your code here
    raise NotImplementedError

conv2d_backward = solution(conv2d_backward)


# %%
check("exercise 1.4 (convolution backward)", checks.test_conv2d_backward)

# %% [markdown]
# The library's backward pass, the adjoint identity that makes `col2im` the
# backward of `im2col` (a one-line check), and the gradient check of `Conv2D`
# with stride 2, padding 1 and `groups=2`:

# %%
show(library_conv.col2im)
show(library_conv.conv2d_backward)

cols = library_conv.im2col(x, 3, 3, 2, 1)
c = rng.standard_normal(cols.shape)
lhs, rhs = np.sum(cols * c), np.sum(x * library_conv.col2im(c, x.shape, 3, 3, 2, 1))
print(f"<im2col(x), c> = {lhs:.12f}\n<x, col2im(c)> = {rhs:.12f}   relative difference {abs(lhs - rhs) / abs(lhs):.1e}")
assert abs(lhs - rhs) < 1e-10 * abs(lhs)
report("Conv2D (groups=2)", check_layer(conv, x))

# %% [markdown]
# ## ReLU and tanh (section 3.1)
#
# ReLU is $f(x) = \max(0, x)$; its derivative is 1 where $x > 0$ and 0 where
# $x < 0$. At $x = 0$ there is none; take 0 there, as the library does. tanh is
# $f(x) = (e^x - e^{-x}) / (e^x + e^{-x})$: derive $f'(x)$ (the quotient rule)
# and write it in terms of $f(x)$ alone, so that the backward pass needs only
# the forward's output.
#
# ### Exercise 1.5: ReLU
#
# Write `relu_forward(x)`, returning `(out, state)`, and
# `relu_backward(dout, state)`, returning dx. Do not change `x` in place (the
# layer below may still need it), and keep its dtype.

# %% tags=["exercise"]
def relu_forward(x):
    """x -> (max(0, x), state for the backward)."""
    # your code here
    raise NotImplementedError

def relu_backward(dout, state):
    """dout, state -> dx."""
    # your code here
    raise NotImplementedError

relu_forward, relu_backward = solution(relu_forward), solution(relu_backward)


# %%
check("exercise 1.5 (ReLU forward and backward)", checks.test_relu)

# %% [markdown]
# ### Exercise 1.6: tanh
#
# Write `tanh_forward(x)`, returning `(out, state)`, and
# `tanh_backward(dout, state)`, with the derivative you derived.

# %% tags=["exercise"]
def tanh_forward(x):
    """x -> (tanh(x), state for the backward)."""
    # your code here
    raise NotImplementedError

def tanh_backward(dout, state):
    """dout, state -> dx."""
    # your code here
    raise NotImplementedError

tanh_forward, tanh_backward = solution(tanh_forward), solution(tanh_backward)


# %%
check("exercise 1.6 (tanh forward and backward)", checks.test_tanh)

# %% [markdown]
# The library's kernels, and the gradient checks of its layers (ReLU's on
# inputs kept away from its kink at 0, `spread`):

# %%
from numpy_alexnet.layers import activation as library_activation
show(library_activation.relu_forward); show(library_activation.relu_backward)
show(library_activation.tanh_forward); show(library_activation.tanh_backward)
xr = spread((3, 2, 4, 5))
print("ReLU forward keeps", int((ReLU().forward(xr, train=True) > 0).sum()), "of", xr.size, "values")
report("ReLU", check_layer(ReLU(), xr))
report("Tanh", check_layer(Tanh(), rng.standard_normal((3, 2, 4, 5))))

# %% [markdown]
# ## The fully connected layer (fc6, fc7, fc8)
#
# `Linear` computes $\text{out} = x W + b$ for x (N, D), W (D, M), b (M,):
# $\text{out}[n, m] = \sum_d x[n, d]\, W[d, m] + b[m]$. The loss adds up the
# examples' parts, so the gradients of $W$ and $b$ collect from every example.
#
# ### Exercise 1.7: the fully connected layer
#
# Derive $\partial L/\partial x[n, d]$, $\partial L/\partial W[d, m]$ and
# $\partial L/\partial b[m]$ from $\delta\text{out}[n, m]$ (each a sum; a gradient
# has the shape of what it differentiates), write each as a matrix product or
# a sum, then write `linear_forward(x, W, b)`, returning out, and
# `linear_backward(dout, x, W)`, returning `(dx, dW, db)`.

# %% tags=["exercise"]
def linear_forward(x, W, b):
    """x (N, D), W (D, M), b (M,) -> out (N, M)."""
    # your code here
    raise NotImplementedError

def linear_backward(dout, x, W):
    """dout (N, M), x (N, D), W (D, M) -> dx (N, D), dW (D, M), db (M,)."""
    # your code here
    raise NotImplementedError

linear_forward, linear_backward = solution(linear_forward), solution(linear_backward)


# %%
check("exercise 1.7 (fully connected forward and backward)", checks.test_linear)

# %% [markdown]
# The library's kernels, and the gradient checks of `Linear` and of `Flatten`,
# a reshape whose backward is the reverse reshape:

# %%
from numpy_alexnet.layers import linear as library_linear
show(library_linear.linear_forward); show(library_linear.linear_backward)
report("Linear", check_layer(Linear(7, 5, weight_std=0.5, bias=0.2, rng=rng, dtype=np.float64),
                             rng.standard_normal((3, 7))))
report("Flatten", check_layer(Flatten(), rng.standard_normal((2, 3, 4, 5))))

# %% [markdown]
# ## Softmax cross-entropy (section 3.5)
#
# The loss of scores $z$ (N, K) for labels $y$ is
# $L = -\frac{1}{N}\sum_n \log p[n, y_n]$ with $p[n] = \text{softmax}(z[n])$,
# $p[n, k] = e^{z[n, k]} / \sum_j e^{z[n, j]}$. Derive
# $\partial L / \partial z[n, k]$: write $\log p[n, y_n] = z[n, y_n] - \log \sum_j e^{z[n, j]}$
# and differentiate each term.
#
# Two facts keep it finite. Subtracting a row's maximum from its scores changes
# no probability, and after it no $e^{z}$ overflows ($e^{1000}$ does). And
# $\log p$ written as $(z - \max) - \log \sum_j e^{z_j - \max}$ (log-sum-exp)
# stays finite where $p$ itself rounds to 0 ($e^{-800}$ does), and
# $\log$ of that 0 is $-\infty$.
#
# ### Exercise 1.8: softmax cross-entropy
#
# Write `softmax_cross_entropy(z, y)` for z (N, K) and integer labels y (N,),
# returning `(loss, dz)`: the mean loss and $\partial L/\partial z$ (N, K).

# %% tags=["exercise"]
def softmax_cross_entropy(z, y):
    """z (N, K) scores, y (N,) labels -> (the mean loss, dL/dz (N, K))."""
    # your code here
    raise NotImplementedError

softmax_cross_entropy = solution(softmax_cross_entropy)


# %%
check("exercise 1.8 (softmax cross-entropy)", checks.test_softmax_cross_entropy)

# %% [markdown]
# The library's loss, and two numbers to know: with all scores equal the loss
# is $\log K$ ($\log 10 = 2.3026$ for CIFAR-10, $\log 1000 = 6.9078$ for
# ImageNet), which is what a freshly initialized network prints at its first
# step.

# %%
from numpy_alexnet.layers import loss as library_loss
show(library_loss.log_softmax)
show(SoftmaxCrossEntropy.backward)
loss_fn = SoftmaxCrossEntropy()
labels = np.array([0, 3, 9, 4])
print(f"loss at equal scores: {loss_fn.forward(np.zeros((4, 10)), labels):.4f}   (expect log 10 = {np.log(10):.4f})")
assert abs(loss_fn.forward(np.zeros((4, 10)), labels) - np.log(10)) < 1e-12
z = rng.standard_normal((4, 10))
loss_fn.forward(z, labels)
dz = loss_fn.backward()
report("SoftmaxCrossEntropy", {"z": rel_error(dz, numerical_gradient(lambda: float(loss_fn.forward(z, labels)), z))})

# %% [markdown]
# ## The layers of notebooks 2 and 6
#
# Pooling, local response normalization and dropout are the next notebooks'
# exercises; here only the library's gradient checks. Max pooling's needs
# inputs without near-ties (`spread`); LRN's uses a large $\alpha = 0.5$ so that
# a window off by one channel would show; dropout's holds the mask fixed
# (`check_layer` restores the layer's random generator before every forward).

# %%
report("MaxPool2D 3x3/2", check_layer(MaxPool2D(kernel_size=3, stride=2), spread((2, 3, 9, 7))))
report("AvgPool2D 3x3/2", check_layer(AvgPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7))))
report("LocalResponseNorm", check_layer(LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75),
                                        rng.standard_normal((2, 7, 3, 4))))
for mode in ("paper", "inverted"):
    report(f"Dropout ({mode})", check_layer(Dropout(rate=0.5, mode=mode, seed=3), rng.standard_normal((4, 9))))

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
report("whole tiny net", check_net(tiny, rng.standard_normal((2, 3, 23, 17)), np.array([0, 2])))

# %% [markdown]
# ## Why float64: the same check in float32
#
# The same convolution's check in float32, with the same step $h = 10^{-5}$,
# shows the rounding floor: float32 keeps about 7 digits, so $x \pm h$ is
# itself rounded and $f(x+h) - f(x-h)$ loses most of its digits. The error
# rises to around $10^{-3}$ or $10^{-2}$ although nothing is wrong.

# %%
conv32 = Conv2D(4, 6, 3, stride=2, padding=1, groups=2, weight_std=0.5, bias=0.1,
                rng=np.random.default_rng(1), dtype=np.float32)
err32 = check_layer(conv32, rng.standard_normal((2, 4, 9, 6)).astype(np.float32))
print("float32, h = 1e-5: worst relative error above 1e-5:", max(err32.values()) > 1e-5,
      "  (around 1e-3 to 1e-2, depending on the machine's rounding)")
assert max(err32.values()) > 1e-5        # far above the float64 errors: rounding, not a bug

# %% [markdown]
# ## Check: every backward pass of the library agrees with central differences
#
# **Expected:** every relative error below $10^{-7}$, most near $10^{-10}$.

# %%
for name, err in sorted(results.items(), key=lambda kv: kv[1]):
    print(f"{name:>22s}  worst relative error {err:.2e}")
worst = max(results.values())
print(f"\nworst of all: {worst:.2e}  (expect < 1e-7)")
assert worst < TOL, results
