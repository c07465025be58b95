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
# # 3. A tour of AlexNet
#
# The network of section 3.5 and Figure 2, built by `numpy_alexnet.alexnet()`
# from a table (`numpy_alexnet.models.alexnet_spec`): one row a layer, read it
# next to the paper. This notebook follows an image through it:
#
# 1. the shapes from 227x227x3 to 6x6x256 and on to 1000 scores;
# 2. the parameters per layer, to the paper's 60 million (60,965,224 exactly);
# 3. the two towers (section 3.2) and the only places they talk;
# 4. the 224/227 puzzle: why the paper's "224x224" cannot give its 55x55.

# %%
import time
import numpy as np
import matplotlib.pyplot as plt
from nbtools import setup, check, solution, show
ROOT, OUT = setup("03_alexnet_tour")
import checks.alexnet_tour as checks    # the exercises' checks: notebooks/checks/alexnet_tour.py

# %%
from numpy_alexnet import alexnet, SoftmaxCrossEntropy
from numpy_alexnet.models import alexnet_spec
from numpy_alexnet.layers import Conv2D
from numpy_alexnet.layers.base import conv_output_size
from numpy_alexnet.gradcheck import rel_error

t = time.perf_counter()
net = alexnet()                       # float32, weights N(0, 0.01), the paper's biases
print(f"time: built in {time.perf_counter() - t:.1f} s (61 million random numbers)")
print(net.summary())

# %% [markdown]
# The network is written down as data, one row a layer, apart from the
# training recipe; `build` turns the rows into layers:

# %%
show(alexnet_spec)

# %% [markdown]
# ## From 227 to 6
#
# Each convolution or pool maps a side of length $H$ to
# $\lfloor (H + 2\,\text{pad} - K)/\text{stride}\rfloor + 1$:
#
# * conv1: 11x11 at stride 4, no padding: (227 - 11)/4 + 1 = **55**
# * pool1: 3x3 at stride 2: (55 - 3)/2 + 1 = **27**; conv2 keeps 27 (5x5, pad 2)
# * pool2: (27 - 3)/2 + 1 = **13**; conv3, conv4, conv5 keep 13 (3x3, pad 1)
# * pool5: (13 - 3)/2 + 1 = **6**, and 6 x 6 x 256 = 9216 inputs to fc6.

# %%
shapes = {layer.name: s for layer, s in zip(net, net.shapes())}
for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "flatten", "fc6", "fc7", "fc8"):
    print(f"{name:>8}: {shapes[name]}")
assert shapes["conv1"] == (96, 55, 55) and shapes["pool1"] == (96, 27, 27)
assert shapes["pool2"] == (256, 13, 13) and shapes["pool5"] == (256, 6, 6)
assert shapes["flatten"] == (9216,) and shapes["fc8"] == (1000,)

# %% [markdown]
# One image through the whole network (test mode: dropout multiplies by 0.5).
# At initialization the 1000 scores are small, the softmax is nearly uniform,
# and the loss is close to $\log 1000 = 6.91$: the number the first line of a
# training log should show.

# %%
x = np.random.default_rng(0).normal(0, 60, size=(2, 3, 227, 227)).astype(np.float32)  # ~ mean-subtracted pixels
t = time.perf_counter()
scores = net.forward(x, train=False)
print(f"time: forward of 2 images in {time.perf_counter() - t:.2f} s")
print(f"scores {scores.shape}, std {scores.std():.3f}")
loss = float(SoftmaxCrossEntropy().forward(scores, np.array([3, 7])))
print(f"loss {loss:.3f}   (expect about log 1000 = {np.log(1000):.3f})")
assert scores.shape == (2, 1000) and abs(loss - np.log(1000)) < 0.5

# %% [markdown]
# ## Parameters per layer
#
# A convolution with $F$ kernels of size $K \times K$ over $C$ channels in $G$
# groups has $F \cdot (C/G) \cdot K^2$ weights and $F$ biases; a fully connected
# layer has $D_\text{in} D_\text{out} + D_\text{out}$. Counted by hand and by the
# library, with the multiply-adds of one forward pass (weights times output
# positions):

# %%
rows, total_params, total_macs = [], 0, 0
for layer in net:
    if not layer.params:
        continue
    if isinstance(layer, Conv2D):
        F, Cg, K = layer.out_channels, layer.in_channels // layer.groups, layer.kh
        by_hand = F * Cg * K * K + F
        macs = F * Cg * K * K * shapes[layer.name][1] * shapes[layer.name][2]
        what = f"{F} x {K}x{K}x{Cg}" + (f" (groups={layer.groups})" if layer.groups > 1 else "")
    else:
        by_hand = layer.in_features * layer.out_features + layer.out_features
        macs = layer.in_features * layer.out_features
        what = f"{layer.in_features} -> {layer.out_features}"
    assert by_hand == layer.num_params(), layer.name
    total_params += by_hand; total_macs += macs
    print(f"{layer.name:>6}  {what:<28} {by_hand:>12,} params {macs / 1e6:>8.1f} M mult-adds")
print(f"{'total':>6}  {'':<28} {total_params:>12,} params {total_macs / 1e6:>8.1f} M mult-adds")

# %% [markdown]
# **Check.** The paper says "60 million parameters"; the table in `docs/paper.md` adds up
# to **60,965,224**, about 96% of them in the three fully connected layers.
# One forward pass is about **724 million** multiply-adds, 92% of them in the
# convolutions.

# %%
fc_share = sum(net[n].num_params() for n in ("fc6", "fc7", "fc8")) / net.num_params()
print(f"total parameters {net.num_params():,}   (expect 60,965,224); fully connected share {fc_share:.1%}")
print(f"multiply-adds per image {total_macs / 1e6:.1f} M   (expect about 724 M)")
assert net.num_params() == total_params == 60_965_224
assert abs(total_macs / 724e6 - 1) < 0.01

# %% [markdown]
# ## The two towers and where they talk (section 3.2, Figure 2)
#
# The paper split the network over two GTX 580 GPUs with 3 GB each: every
# layer's kernels are halved between them, and "the GPUs communicate only in
# certain layers": conv3 takes input from all kernel maps of conv2, while
# conv2, conv4 and conv5 see only the maps on their own GPU; the fully
# connected layers see everything.
#
# On one device, "each half of the kernels sees only its own half of the input
# channels" is exactly a **grouped convolution** with `groups=2`. So the
# weights of conv2 are 256 kernels of 5x5x**48**, not 5x5x96:

# %%
for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
    layer = net[name]
    talks = "both towers" if layer.groups == 1 else "own tower only"
    print(f"{name}: W {layer.params['W'].shape}, groups={layer.groups}: each kernel sees {layer.params['W'].shape[1]} channels ({talks})")
print("fc6, fc7, fc8: fully connected, see both towers")
assert [net[n].groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]

# %% [markdown]
# ### The picture: two towers, four crossings
#
# Each box is one tower's half of a layer, with its number of kernels (or
# units). Grey arrows stay inside a tower; red arrows are the four places where
# a layer reads both towers: conv3, fc6, fc7 and fc8. On two GPUs each red
# arrow that crosses between the rows is a copy from one GPU to the other.

# %%
from matplotlib.patches import FancyBboxPatch
layers = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
per_tower = {name: (net[name].out_channels if isinstance(net[name], Conv2D) else net[name].out_features) // 2
             for name in layers}
crossing = {"conv3", "fc6", "fc7", "fc8"}              # layers that read both towers
fig, ax = plt.subplots(figsize=(12, 3.6))
ax.add_patch(FancyBboxPatch((-1.35, 0.55), 0.7, 0.9, boxstyle="round,pad=0.02", fc="#eeeeee", ec="black"))
ax.text(-1.0, 1.0, "image\n227x227x3", ha="center", va="center", fontsize=8)
for col, name in enumerate(layers):
    for row, y in enumerate((1.5, 0.5)):               # tower 1 on top, tower 2 below
        ax.add_patch(FancyBboxPatch((col - 0.3, y - 0.25), 0.6, 0.5, boxstyle="round,pad=0.02",
                                    fc="#cfe2f3" if row == 0 else "#d9ead3", ec="black"))
        ax.text(col, y, f"{name}\n{per_tower[name]}", ha="center", va="center", fontsize=8)
        src = [(col - 1, y)] if col else [(-0.65, 1.0)]
        if name in crossing:
            src = [(col - 1, 1.5), (col - 1, 0.5)]
        for sx, sy in src:
            cross = name in crossing
            ax.annotate("", xy=(col - 0.32, y), xytext=(sx + (0.32 if col else 0), sy),
                        arrowprops=dict(arrowstyle="->", color="red" if cross else "grey", lw=1.6 if cross else 1))
ax.text(-0.45, 1.5, "tower 1", ha="center", va="center", fontsize=9, rotation=90)
ax.text(-0.45, 0.5, "tower 2", ha="center", va="center", fontsize=9, rotation=90)
ax.set_xlim(-1.5, 7.5); ax.set_ylim(0, 2); ax.axis("off")
ax.set_title("AlexNet's two towers: kernels (or units) per tower; red = reads both towers")
plt.tight_layout(); plt.show()
print("per tower:", per_tower, "| layers reading both towers:", sorted(crossing, key=layers.index))
assert [name for name in layers if name.startswith("conv") and net[name].groups == 1] == ["conv1", "conv3"]

# %% [markdown]
# Two checks that the grouping really is the two towers:
#
# 1. conv2 equals two separate convolutions: tower 1's 128 kernels on channels
#    0-47, tower 2's on channels 48-95.
# 2. Changing tower 2's input (channels 48-95 of pool1) leaves tower 1's conv2
#    output (kernels 0-127) exactly unchanged, while conv3, where the towers
#    meet, changes everywhere.

# %%
pool1_out = x[:1]
for layer in net.layers[:4]:                           # conv1, relu1, norm1, pool1
    pool1_out = layer.forward(pool1_out, train=False)
conv2 = net["conv2"]
both = conv2.forward(pool1_out, train=False)                        # (1, 256, 27, 27)
towers = []
for t_idx in range(2):
    half = Conv2D(in_channels=48, out_channels=128, kernel_size=5, padding=2, rng=np.random.default_rng(0))
    half.params["W"] = conv2.params["W"][128 * t_idx:128 * (t_idx + 1)]
    half.params["b"] = conv2.params["b"][128 * t_idx:128 * (t_idx + 1)]
    towers.append(half.forward(np.ascontiguousarray(pool1_out[:, 48 * t_idx:48 * (t_idx + 1)]), train=False))
err = rel_error(both, np.concatenate(towers, axis=1))
print(f"conv2 (groups=2) vs two separate towers: relative error {err:.1e}   (expect 0, or float32 rounding < 1e-6)")
assert err < 1e-6

def run_from_pool1(p1, upto):
    out = p1
    for layer in net.layers[4:]:
        out = layer.forward(out, train=False)
        if layer.name == upto:
            return out

poked = pool1_out.copy()
poked[:, 48:] += np.random.default_rng(1).normal(0, 10, size=poked[:, 48:].shape).astype(np.float32)
c2_a, c2_b = run_from_pool1(pool1_out, "conv2"), run_from_pool1(poked, "conv2")
c3_a, c3_b = run_from_pool1(pool1_out, "conv3"), run_from_pool1(poked, "conv3")
print("conv2 tower 1 (kernels 0-127) changed:", not np.array_equal(c2_a[:, :128], c2_b[:, :128]))
print("conv2 tower 2 (kernels 128-255) changed:", not np.array_equal(c2_a[:, 128:], c2_b[:, 128:]))
print("conv3 kernels changed: %d of 384" % int((np.abs(c3_a - c3_b).max(axis=(0, 2, 3)) > 0).sum()))
assert np.array_equal(c2_a[:, :128], c2_b[:, :128]) and not np.array_equal(c2_a[:, 128:], c2_b[:, 128:])
assert int((np.abs(c3_a - c3_b).max(axis=(0, 2, 3)) > 0).sum()) == 384

# %% [markdown]
# **LRN and the tower boundary.** The paper's text does not say how LRN
# treats the boundary between its two towers. On two GPUs each tower can only
# normalize its own 48 (conv1) or 128 (conv2) maps, since the towers do not
# communicate there, and the 2012 code does exactly that; so `norm1` and
# `norm2` of the library's `alexnet()` have `groups=2`: two windows, each
# truncated at its tower's edge (notebook 2 draws them). Caffe's one-device
# AlexNet (and `bvlc_alexnet.npy`) runs one window over all 96 and 256
# channels instead, so the two channels on each side of the boundary reach
# into the other tower; `numpy_alexnet.pretrained.use_caffe_lrn` builds that.
# The check: change only tower 2's maps and see which tower-1 channels move.

# %%
from numpy_alexnet.layers import LocalResponseNorm
relu1_out = np.maximum(net["conv1"].forward(x[:1], train=False), 0)
poked = relu1_out.copy(); poked[:, 48:] *= 3.0                    # only tower 2's maps change

def moved(lrn):
    diff = np.abs(lrn.forward(relu1_out, train=False) - lrn.forward(poked, train=False)).max(axis=(0, 2, 3))
    return np.flatnonzero(diff[:48] > 0).tolist()                 # tower-1 channels that change

print("per tower (the 2012 code, groups=2):", moved(net["norm1"]), "  (expect [])")
print("one window over all 96 (Caffe):    ", moved(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)), "  (expect [46, 47])")
assert net["norm1"].groups == 2 and moved(net["norm1"]) == []
assert moved(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)) == [46, 47]

# %% [markdown]
# ## The 224/227 puzzle
#
# Section 3.5 says the input is 224x224x3 and conv1 uses stride 4 to give
# 55x55x96. But $(224 - 11)/4 + 1 = 54.25$: with no padding, 224 gives 54
# (floor), and the network would end in 5x5x256 = 6400 features, not the 9216
# that fc6 expects. Two repairs are in use:
#
# * **227x227 input, no padding** (Caffe, and this library): $(227 - 11)/4 + 1 = 55$ exactly;
# * **224x224 input, padding 2** (torchvision): $\lfloor(224 + 4 - 11)/4\rfloor + 1 = 55$.
#
# The paper's training crops are described as 224x224 patches of the 256x256
# images; the library's `alexnet()` takes 227x227 inputs (see `docs/faithfulness.md`).

# %%
print("conv1 side, 224 no padding: ", conv_output_size(224, 11, 4, 0))
print("conv1 side, 227 no padding: ", conv_output_size(227, 11, 4, 0))
print("conv1 side, 224 padding 2:  ", conv_output_size(224, 11, 4, 2))
s224, shape = {}, (3, 224, 224)
for layer in net.layers[:net.layers.index(net["fc6"])]:           # up to fc6, which would refuse
    shape = s224[layer.name] = layer.output_shape(shape)
print("with 224 inputs: pool5", s224["pool5"], "-> flatten", s224["flatten"], "but fc6 expects", net["fc6"].in_features)
assert conv_output_size(224, 11, 4, 0) == 54 and conv_output_size(227, 11, 4, 0) == 55
assert conv_output_size(224, 11, 4, 2) == 55 and s224["flatten"] == (6400,)
try:
    net.forward(np.zeros((1, 3, 224, 224), np.float32), train=False)
except ValueError as err:                              # the network refuses, and says why
    print("net.forward(224x224) ->", type(err).__name__ + ":", err)

# %% [markdown]
# ## The torchvision AlexNet is a different network
#
# `torchvision.models.alexnet` is the single-tower variant of Krizhevsky's
# later "one weird trick" paper: 64, 192, 384, 256, 256 kernels, no LRN, no
# groups, 224x224 input with padding 2. It is offered here, under its own
# name, only so its weights can be loaded: `numpy_alexnet.alexnet_torchvision()`.

# %%
from numpy_alexnet.models import alexnet_torchvision_spec
tv_params = 0
for name, kind, args in alexnet_torchvision_spec():
    if kind == "conv":
        tv_params += args["out_channels"] * args["in_channels"] * args["kernel_size"] ** 2 + args["out_channels"]
    elif kind == "linear":
        tv_params += args["in_features"] * args["out_features"] + args["out_features"]
print(f"torchvision AlexNet: {tv_params:,} parameters (expect 61,100,840); the paper's: {net.num_params():,}")
assert tv_params == 61_100_840


# %% [markdown]
# ## Exercises
#
# Solutions: `notebooks/solutions/03_alexnet_tour.py` (open it after trying).
#
# ### Exercise 3.1: the side of every feature map
#
# Write `side_after(H, layers)`: `layers` is a list of `(kernel, stride, pad)`
# for the convolutions and pools in order; return the list of sides after each
# one, starting from a square input of side `H`. Use integer arithmetic only.

# %% tags=["exercise"]
def side_after(H, layers):
    """Sides after each (kernel, stride, pad) in turn, from an input of side H."""
    # your code here
    raise NotImplementedError

side_after = solution(side_after)

# %% [markdown]
# The check tries AlexNet from 227 and from 224, the Figure-1 CIFAR net from
# 32, and a side so large that a float could not hold the division exactly.

# %%
check("exercise 3.1 (feature map sides)", checks.test_side_after)

# %% [markdown]
# ### Exercise 3.2: parameters of a grouped convolution
#
# Write `conv_params(F, C, K, groups)`: the number of weights and biases of a
# convolution with `F` kernels of `K`x`K` over `C` input channels split into
# `groups` groups. The check counts AlexNet's five convolutions with it and
# compares with the library.

# %% tags=["exercise"]
def conv_params(F, C, K, groups):
    """Weights plus biases of a KxK convolution, C -> F channels, in `groups` groups."""
    # your code here
    raise NotImplementedError

conv_params = solution(conv_params)

# %%
check("exercise 3.2 (grouped conv parameters)", checks.test_conv_params)
