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
#     needs_data: true
# ---

# %% [markdown]
# # 5. What the network learned: Figures 3 and 4
#
# Section 6.1 of the paper looks inside the trained network two ways:
#
# * **Figure 3**: the 96 kernels of conv1 (11x11x3), shown as small RGB
#   images: oriented edges, frequency patterns and colour blobs. The 48 kernels
#   of the first GPU came out largely colour-agnostic, the 48 of the second
#   largely colour-specific.
# * **Figure 4**: for a few test images, the training images whose last hidden
#   layer (fc7, 4096 numbers) is nearest in *Euclidean distance*: they share
#   the query's class even where their pixels differ a lot (pose, colour,
#   background).
#
# AlexNet needs days of ImageNet training; here the same two looks are taken
# at the **Figure-1 CIFAR-10 network** (`cifar_fig1_relu`: 32 conv1 kernels of
# 5x5x3, then two more convolutions and one fully connected layer), **trained
# on all 50,000 CIFAR-10 training images for 30 epochs**. Its weights ship
# with the notebooks (`notebooks/data/fig1_relu.npy`, 176 KB, and
# `fig1_relu.json`, which says how they were trained). Its last hidden layer
# is the flattened pool3 output, 3x3x64 = **576 numbers**, standing in for
# AlexNet's fc7.

# %%
import json, os, time
from pathlib import Path
import numpy as np
import matplotlib.pyplot as plt
from nbtools import setup, check, solution, show, cifar10_path
ROOT, OUT = setup("05_what_it_learned")
import checks.what_it_learned as checks  # the exercises' checks: notebooks/checks/what_it_learned.py

# The shared CIFAR-10 archive (JPEG image folders), next to the repository,
# or wherever $NUMPY_ALEXNET_DATA points.
DATA = cifar10_path()
print("data:", DATA.name)

# %%
from numpy_alexnet.data import load_dataset, EvalTransform, BatchIterator

PER_CLASS = 300                       # the first 300 images of each class, in each split
t = time.perf_counter()
ds = load_dataset(DATA, limit_per_class=PER_CLASS, progress=False)   # decoded once, then cached
print(f"time: loaded in {time.perf_counter() - t:.1f} s")
print({name: (len(split), split.images.shape[1:]) for name, split in ds.splits.items()})
classes = ds.classes

# %% [markdown]
# ## The trained network
#
# How the weights were made, from `fig1_relu.json`:

# %%
info = json.loads((ROOT / "notebooks" / "data" / "fig1_relu.json").read_text())
for key in ("what", "trained_with", "hardware", "result", "made_from", "preprocess"):
    print(f"{key}: {info[key]}")

# %% [markdown]
# The file is one float16 vector: the weights in the order of `layout`, then
# the training set's mean image. Float16 keeps about three digits, plenty for
# pictures and nearest neighbours. Each slice is reshaped and copied into a
# fresh `cifar_fig1("relu")`:

# %%
from numpy_alexnet import cifar_fig1
from numpy_alexnet.models import fig1_weight_stds

flat = np.load(ROOT / "notebooks" / "data" / "fig1_relu.npy").astype(np.float32)   # (88170,)
arrays, start = {}, 0
for entry in info["layout"]:
    size = int(np.prod(entry["shape"]))
    arrays[entry["name"]] = flat[start:start + size].reshape(entry["shape"])        # e.g. (32, 3, 5, 5)
    start += size
assert start == flat.size

net = cifar_fig1("relu", seed=0, weight_stds=fig1_weight_stds("fan-in"))       # the run's start (--init fan-in)
for name, layer, key in net.named_params():
    layer.params[key][...] = arrays[name]                                           # e.g. conv1.W
mean_image, scale = arrays["mean_image"], info["input_scale"]                       # (3, 32, 32), float
to_input = EvalTransform(mean_image, crop_size=None, mode="full", scale=scale)      # (x - mean) * scale
print(net.summary())

# %% [markdown]
# **Check.** The run's log gives a top-1 test error of 0.2186 on all 10,000
# test images; on the 3,000 loaded here, with float16 weights, expect about
# the same (0.20 to 0.24; chance is 0.90). The error is counted by the
# library's `topk_error`:

# %%
from numpy_alexnet.data import topk_error
show(topk_error)

scores = np.concatenate([net.forward(x, train=False)
                         for x, _ in BatchIterator(ds.test.images, ds.test.labels, 500, shuffle=False, transform=to_input)])
top1 = topk_error(scores, ds.test.labels, k=1)
print(f"top-1 error on {len(ds.test):,} test images: {top1:.3f}")
assert 0.15 < top1 < 0.3

# %% [markdown]
# ## Figure 3: the first layer's kernels
#
# Each of conv1's 32 kernels drawn as a 5x5 RGB tile, scaled to its own range
# (as the paper's figure does), next to the same layer where its training
# started (seed 0, N(0, 1/75): the run's `--init fan-in`). Learned: light/dark
# edges and bars at several orientations, and colour blobs; at the start: noise.

# %%
def kernel_tiles(W):
    """(F, 3, K, K) kernels -> (F, K, K, 3) RGB tiles, each scaled to [0, 1] on its own."""
    lo = W.min(axis=(1, 2, 3), keepdims=True)
    hi = W.max(axis=(1, 2, 3), keepdims=True)
    return ((W - lo) / np.where(hi > lo, hi - lo, 1.0)).transpose(0, 2, 3, 1)    # (F, 3, K, K) -> (F, K, K, 3)

W = net["conv1"].params["W"]                                   # (32, 3, 5, 5), trained
W0 = cifar_fig1("relu", seed=0, weight_stds=fig1_weight_stds("fan-in"))["conv1"].params["W"]   # (32, 3, 5, 5): where it started
fig, axes = plt.subplots(4, 17, figsize=(14, 3.8), gridspec_kw={"wspace": 0.08, "hspace": 0.08})
for ax in axes.ravel():
    ax.axis("off")
for f, tile in enumerate(kernel_tiles(W)):
    axes[f // 8, f % 8].imshow(tile, interpolation="nearest")
for f, tile in enumerate(kernel_tiles(W0)):
    axes[f // 8, 9 + f % 8].imshow(tile, interpolation="nearest")
axes[0, 3].set_title("trained: 30 epochs on 50,000 images", loc="left", fontsize=10)
axes[0, 12].set_title("at the start of training", loc="left", fontsize=10)
fig.suptitle("conv1 of the Figure-1 net: 32 kernels of 5x5x3", y=0.98)
plt.show()

# %% [markdown]
# Two numbers about these kernels:
#
# * **How far they moved from their start**: the norm of the trained layer
#   against the layer it started from.
# * **Colour or luminance?** For each kernel, the share of its energy in the
#   part common to R, G and B (the grey part). A random kernel has about 1/3; a
#   kernel that responds to brightness edges regardless of colour has nearly 1.
#   The paper's first tower learned mostly such kernels, its second mostly
#   colour ones. This one-tower net learns both kinds side by side.
#
# ### Exercise 5.1: colour or luminance
#
# Write `grey_share(W)`: for kernels W (F, 3, K, K) return, per kernel, the
# fraction of its energy (sum of squares) in its grey part, the mean over the
# three colour channels repeated in each channel. A kernel equal in R, G and B
# gives 1; one whose channels sum to zero at every pixel gives 0. (Why does a
# random kernel give about 1/3?) No loop over kernels.

# %% tags=["exercise"]
def grey_share(W):
    """(F, 3, K, K) -> (F,): the share of each kernel's energy in its colour-agnostic part."""
    # your code here
    raise NotImplementedError

grey_share = solution(grey_share)

# %%
check("exercise 5.1 (grey share of a kernel)", checks.test_grey_share)

# %% [markdown]
# The two numbers for the trained conv1:

# %%
growth = np.linalg.norm(W) / np.linalg.norm(W0)
grey = W.mean(axis=1, keepdims=True)                      # (32, 1, 5, 5): the part common to R, G, B
shares = 3 * (grey ** 2).sum(axis=(1, 2, 3)) / (W ** 2).sum(axis=(1, 2, 3))     # (32,)
print(f"||conv1|| is {growth:.2f}x its start")
print(f"grey share per kernel: median {np.median(shares):.2f}; {int((shares > 0.8).sum())} of 32 above 0.8 "
      f"(luminance), {int((shares < 0.5).sum())} below 0.5 (colour); random kernels: about 0.33")
assert np.median(shares) > 0.4

# %% [markdown]
# ## Figure 4: nearest training images in feature space
#
# The feature vector of an image is the network's last hidden layer: run the
# layers in test mode up to `flatten` (576 numbers here, 4096 at fc7 for
# AlexNet). For each query (a test image), the training images with the
# smallest Euclidean distance $\lVert f(q) - f(t)\rVert$ are its neighbours:
# 3,000 x 3,000 distances between vectors of 576 numbers.
#
# ### Exercise 5.2: all pairwise distances without a loop
#
# Write `sq_distances(a, b)`: for `a` (n, D) and `b` (m, D) return the (n, m)
# matrix of squared Euclidean distances, with no Python loop and no (n, m, D)
# array (for the 3,000 x 3,000 x 576 here that would be 41 GB in float64):
# expand $\lVert a - b\rVert^2$ into terms that a matrix product and
# broadcasting give. Compute in float64; rounding can make a tiny distance come
# out slightly negative, which a distance never is.

# %% tags=["exercise"]
def sq_distances(a, b):
    """(n, D), (m, D) -> (n, m) squared Euclidean distances, float64, >= 0."""
    # your code here
    raise NotImplementedError

sq_distances = solution(sq_distances)

# %%
check("exercise 5.2 (pairwise distances)", checks.test_sq_distances)

# %% [markdown]
# The features, and the distances as the notebook computes them:

# %%
def features(images, upto="flatten", batch=500):
    """The activations of layer `upto`, flattened, for uint8 images, in test mode."""
    out = []
    for i in range(0, len(images), batch):
        h = to_input(images[i:i + batch])
        for layer in net:
            h = layer.forward(h, train=False)
            if layer.name == upto:
                break
        out.append(h.reshape(len(h), -1))                  # (batch, 576)
    return np.concatenate(out)

def sq_distances_ref(a, b):
    """Squared Euclidean distances (len(a), len(b)), in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T, 0)

f_train, f_test = features(ds.train.images), features(ds.test.images)
d = sq_distances_ref(f_test, f_train)                    # (3000 test, 3000 train)
print(f"features: train {f_train.shape}, test {f_test.shape}; distances {d.shape}")

# %%
from IPython.display import Image, display
from numpy_alexnet.viz import neighbour_grid

queries = [int(np.flatnonzero(ds.test.labels == c)[0]) for c in range(0, 10, 2)]   # one of every other class
nearest = np.argsort(d[queries], axis=1)[:, :6]                                   # (5, 6) training indexes
fig = neighbour_grid(ds.test.images[queries], ds.train.images[nearest], OUT / "fig4_neighbours.png",
                     title="Nearest training images by Euclidean distance of 576-d pool3 features",
                     query_labels=[classes[ds.test.labels[q]] for q in queries],
                     neighbour_labels=[[classes[ds.train.labels[j]] for j in row] for row in nearest])
display(Image(filename=str(OUT / "fig4_neighbours.png")))
same = (ds.train.labels[nearest] == ds.test.labels[queries][:, None]).mean()
print(f"neighbours sharing the query's class: {same:.2f}")

# %% [markdown]
# **Check.** If the features carry class information, a test image's nearest
# training image should often share its class: the 1-nearest-neighbour
# accuracy, against the same search on raw pixels. Pixels find images with
# the same colours and layout; the trained features find the same class.

# %%
acc_feat = float(np.mean(ds.train.labels[d.argmin(axis=1)] == ds.test.labels))
px_train = ds.train.images.reshape(len(ds.train), -1).astype(np.float32) - mean_image.reshape(1, -1)
px_test = ds.test.images.reshape(len(ds.test), -1).astype(np.float32) - mean_image.reshape(1, -1)
acc_px = float(np.mean(ds.train.labels[sq_distances_ref(px_test, px_train).argmin(axis=1)] == ds.test.labels))
print(f"1-nearest-neighbour accuracy on {len(ds.test):,} test images: "
      f"pool3 features {acc_feat:.3f}, raw pixels {acc_px:.3f}, chance 0.100")
assert acc_feat > acc_px + 0.2
