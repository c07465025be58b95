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
# # 6. The paper against the 2012 code
#
# In 2025 the Computer History Museum, with Google, published Alex
# Krizhevsky's original cuda-convnet code and configuration files for AlexNet
# (the GitHub repository computerhistory/AlexNet-Source-Code). The paper's
# network is its `layers-145` configuration. Read side by side with the paper,
# the files show a network trained in ways the paper's text does not say. The
# full list is in `docs/paper.md`; this notebook takes the differences one at a
# time and, where the project offers the variant, shows it on the project's
# own layers:
#
# 1. the LRN constant: alpha on the sum, or alpha divided by the window size;
# 2. LRN across the towers, or within each tower;
# 3. conv1's order: ReLU, LRN, pool in the paper; LRN, pool, ReLU in the code;
# 4. output sizes: floor in this project (and Caffe, PyTorch), window positions
#    rounded up in cuda-convnet, so 224 gives 55;
# 5. the learning-rate schedule the code's logs record, and the ablations they
#    hold, against the paper's numbers;
# 6. dropout as the paper writes it against the "inverted" dropout most
#    libraries use today (not a difference of the code, but the same kind of
#    question: two forms with the same expected activation).
#
# Everything here runs on the project's layers; nothing is taken from the 2012
# code itself.

# %%
import numpy as np
import matplotlib.pyplot as plt
from nbtools import setup, check, solution, show
ROOT, OUT = setup("06_paper_vs_2012_code")
import checks.paper_vs_code as checks   # the exercises' checks: notebooks/checks/paper_vs_code.py

from numpy_alexnet.layers import Conv2D, ReLU, LocalResponseNorm, MaxPool2D, Dropout
from numpy_alexnet.layers.base import conv_output_size
from numpy_alexnet.gradcheck import rel_error

rng = np.random.default_rng(0)
# Activations shaped like conv1's output for one image: 96 channels of 55x55, ReLU-sized values.
z = rng.normal(0, 40, size=(1, 96, 55, 55)).astype(np.float64)      # (N, C, H, W), pre-activation
a = np.maximum(z, 0)                                                 # after the ReLU

# %% [markdown]
# ## 1. The LRN constant
#
# The paper: $b_i = a_i / (k + \alpha \sum_j a_j^2)^\beta$ with $\alpha = 10^{-4}$,
# alpha on the sum. The code's layer takes `scale=0.0001` and divides it by the
# window size 5 before use: the convention of Caffe and PyTorch (notebook 2),
# so the $\alpha$ on the plain sum is $2 \times 10^{-5}$, a normalization five
# times weaker than the paper's formula read literally. The library follows the
# paper's text; `alpha=2e-5` gives the code's layer.

# %%
paper_lrn = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)
code_lrn = LocalResponseNorm(n=5, k=2.0, alpha=1e-4 / 5, beta=0.75)
b_paper, b_code = paper_lrn.forward(a, train=False), code_lrn.forward(a, train=False)
shrink_paper = np.median((b_paper / np.where(a > 0, a, 1))[a > 0])
shrink_code = np.median((b_code / np.where(a > 0, a, 1))[a > 0])
print(f"median factor b/a: paper's alpha {shrink_paper:.3f}, the code's alpha/5 {shrink_code:.3f}")
print(f"relative difference of the two layers' outputs: {rel_error(b_paper, b_code):.3f}")
assert shrink_paper < shrink_code < 1

# %% [markdown]
# ## 2. LRN and the towers
#
# The paper's text does not say how LRN treats the towers. In the code each
# tower normalizes its own 48 channels, the window stopping at the tower's
# edge, as a tower on one GPU must; the library's `alexnet()` does the same
# (`groups=2` in norm1 and norm2). A one-device reimplementation that runs one
# window over all 96 channels, as Caffe's AlexNet does, changes exactly the two
# channels on each side of the edge (notebook 2 draws the windows).

# %%
per_tower = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75, groups=2).forward(a, train=False)
one_window = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1).forward(a, train=False)
differ = np.flatnonzero(np.abs(per_tower - one_window).max(axis=(0, 2, 3)) > 0)
print("channels that differ between per-tower and one-window LRN:", differ.tolist(), "  (expect [46, 47, 48, 49])")
assert differ.tolist() == [46, 47, 48, 49]

# %% [markdown]
# ## 3. conv1's order
#
# The paper: conv1, ReLU, LRN, max-pool. The code's `layers-145.cfg`: conv1
# without a neuron, LRN on the pre-activations, max-pool, and the ReLU after
# the pool. Two facts decide how much that matters:
#
# * ReLU and max-pool commute: both are monotone, so the max of the rectified
#   values is the rectified max. Moving the ReLU past the pool alone changes
#   nothing (and costs a quarter of the work).
# * LRN before the ReLU sees the negative pre-activations too: their squares
#   enter the window sums and damp the positive neighbours more.

# %%
pool = MaxPool2D(kernel_size=3, stride=2)
relu = ReLU()
lrn = LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)
commute = rel_error(pool.forward(relu.forward(z, train=False), train=False),
                    relu.forward(pool.forward(z, train=False), train=False))
paper_order = pool.forward(lrn.forward(relu.forward(z, train=False), train=False), train=False)     # (1, 96, 27, 27)
code_order = relu.forward(pool.forward(lrn.forward(z, train=False), train=False), train=False)      # (1, 96, 27, 27)
print(f"pool(relu(z)) against relu(pool(z)): relative difference {commute:.1e}  (they commute)")
print(f"paper's order against the code's: relative difference {rel_error(paper_order, code_order):.3f}; "
      f"output means {paper_order.mean():.2f} and {code_order.mean():.2f}")
assert commute == 0 and code_order.mean() < paper_order.mean()

# %% [markdown]
# The picture: for the same pre-activations, the factor LRN multiplies the
# positive values by, in the paper's order (LRN after the ReLU, so only
# positive neighbours count) and in the code's (LRN before it, negative
# neighbours count too).

# %%
pos = z > 0
factor_paper = (lrn.forward(a, train=False) / np.where(pos, z, 1))[pos]
factor_code = (lrn.forward(z, train=False) / np.where(pos, z, 1))[pos]
fig, ax = plt.subplots(figsize=(7, 3.4))
bins = np.linspace(min(factor_paper.min(), factor_code.min()), 0.6, 60)
ax.hist(factor_paper, bins=bins, alpha=0.6, label="paper: LRN after ReLU")
ax.hist(factor_code, bins=bins, alpha=0.6, label="2012 code: LRN on pre-activations")
ax.set_xlabel("b / a for positive activations"); ax.set_ylabel("count"); ax.legend()
ax.set_title("conv1's LRN factor, activations ~N(0, 40)")
plt.tight_layout(); plt.show()
print(f"median factor: paper's order {np.median(factor_paper):.3f}, the code's {np.median(factor_code):.3f}")

# %% [markdown]
# ## 4. Output sizes: floor, or window positions rounded up
#
# This project, Caffe and PyTorch count the windows that fit:
# $\lfloor (H + 2p - K)/s \rfloor + 1$. cuda-convnet counts the window positions
# needed to reach the last pixel, rounding up, so the last window may hang over
# the edge: $\lceil (H + 2p - K)/s \rceil + 1$. With that rule the paper's 224
# input does give 55 (exercise 6.2).

# %%
show(conv_output_size)
print("floor: 224 ->", conv_output_size(224, 11, 4, 0), "  227 ->", conv_output_size(227, 11, 4, 0))

# %% [markdown]
# ## 5. What the logs record
#
# The configuration files carry the learning rates as they were when training
# ended and comments recording when they were changed. Left: the schedule they
# record, against the paper's "divided by 10 three times, about 90 epochs"
# (which gives no epochs; the code lowered the rate twice for all layers, then
# lowered and froze conv1 alone, then lowered the rest a third time). Right:
# the ablations logged in the same files (ILSVRC-2012 validation, ten views;
# two towers against one: ILSVRC-2010), as gains in top-1 and top-5 error,
# against the gains the paper states.

# %%
log_schedule = [(0, 1e-2), (23, 1e-3), (51, 1e-4), (78, 1e-5), (93, 1e-5)]     # all layers but conv1
conv1_schedule = [(0, 1e-2), (23, 1e-3), (51, 1e-4), (68, 1e-4)]   # then lowered at 68, to a value not recorded
CONV1_LOWERED, CONV1_FROZEN, END = 68, 72, 93
ablations = {                          # (error without, error with) in %, top-1 and top-5, from the logs
    "LRN": ((42.03, 19.36), (40.66, 18.21)),
    "overlapping pool": ((41.06, 18.51), (40.66, 18.21)),
    "two towers": ((39.17, 18.23), (37.47, 17.00)),
}
paper_gain = {"LRN": (1.4, 1.2), "overlapping pool": (0.4, 0.3), "two towers": (1.7, 1.2)}
logged_gain = {k: tuple(round(w - v, 2) for w, v in zip(*ab)) for k, ab in ablations.items()}

fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 3.8))
ep, lr = zip(*log_schedule)
a0.step(ep, lr, where="post", color="black", label="conv2 ... fc8")
ep1, lr1 = zip(*conv1_schedule)
a0.step(ep1, lr1, where="post", color="tab:red", ls="--", label="conv1")
a0.axvspan(CONV1_LOWERED, CONV1_FROZEN, color="tab:red", alpha=0.12, lw=0)
a0.plot([CONV1_FROZEN, END], [3e-7, 3e-7], color="tab:red", ls="--", lw=2.5)
a0.text(CONV1_LOWERED - 1, 3e-3, f"conv1 lowered at {CONV1_LOWERED}\n(value not recorded)", color="tab:red",
        ha="right", fontsize=8)
a0.text(CONV1_FROZEN + 1, 6e-7, f"conv1 frozen\nfrom {CONV1_FROZEN}", color="tab:red", fontsize=8)
a0.set_yscale("log"); a0.set_xlabel("epoch"); a0.set_ylabel("weight learning rate"); a0.legend(loc="upper right")
a0.set_title("the schedule the 2012 files record")
names = list(ablations)
xs = np.arange(len(names))
for i, (label, table) in enumerate((("paper, top-1", paper_gain), ("logs, top-1", logged_gain))):
    a1.bar(xs + (i - 0.5) * 0.35, [table[n][0] for n in names], width=0.35, label=label, alpha=0.8)
a1.plot(xs - 0.175, [paper_gain[n][1] for n in names], "kx", label="paper, top-5")
a1.plot(xs + 0.175, [logged_gain[n][1] for n in names], "k+", ms=10, label="logs, top-5")
a1.set_xticks(xs); a1.set_xticklabels(names); a1.set_ylabel("error lowered by (points)")
a1.set_title("ablations: the paper's gains and the logged ones"); a1.legend(fontsize=8)
plt.tight_layout(); plt.show()
print(f"conv1: {conv1_schedule[-1][1]:g} until epoch {CONV1_LOWERED}, lowered then, frozen from {CONV1_FROZEN}; "
      f"the other layers: {', '.join(f'{lr:g} from {e}' for e, lr in log_schedule[:-1])}; stopped at {END}")
for n in names:
    print(f"{n:>16}: paper {paper_gain[n]}, logged {logged_gain[n]}")
assert conv1_schedule[-1][0] == CONV1_LOWERED < CONV1_FROZEN     # the figure draws what the text says
assert all(abs(logged_gain[n][0] - paper_gain[n][0]) < 0.05 for n in names)

# %% [markdown]
# The logged gains round to the paper's numbers: the ablations in the paper
# are these runs.
#
# ## 6. Dropout: the paper's form and the inverted form
#
# The paper zeroes each of fc6's and fc7's outputs with probability 0.5 in
# training and, at test time, uses all of them multiplied by 0.5. The inverted
# form divides the kept outputs by 0.5 in training and leaves test time alone.
# The expected output in training equals the test-time output in both; the
# inverted network's weights after fc6 and fc7 are the paper's scaled by 0.5.
# `Dropout(mode="paper")` and `Dropout(mode="inverted")` are both in the
# project. The paper's rate is 0.5, where a rate and a keep probability are
# the same number; at other rates they are not.
#
# ### Exercise 6.1: dropout in both forms, forward and backward
#
# Write `dropout(x, keep, rate, mode, train)`: `keep` is a boolean array like
# `x` (True = the neuron is kept; in training each is dropped with probability
# `rate`), `mode` is `"paper"` or `"inverted"`. Return the layer's output in
# training (`train=True`) and at test time. Then write
# `dropout_backward(dout, keep, rate, mode)`, dL/dx after a training forward:
# derive it from your forward. The check compares both with `Dropout` on the
# same mask, at the rates 0.5, 0.2 and 0.7.

# %% tags=["exercise"]
def dropout(x, keep, rate, mode, train):
    """x (any shape), keep (bool, like x) -> the output of dropout in `mode`."""
    # your code here
    raise NotImplementedError

def dropout_backward(dout, keep, rate, mode):
    """dL/dx of a training forward in `mode`, for dout like x."""
    # your code here
    raise NotImplementedError

dropout, dropout_backward = solution(dropout), solution(dropout_backward)

# %%
check("exercise 6.1 (the paper's and inverted dropout)", checks.test_dropout)

# %% [markdown]
# The library's layer: the mask drawn from the layer's own generator, and the
# same multiplication in the backward pass.

# %%
show(Dropout.forward)
show(Dropout.backward)

# %% [markdown]
# ### Exercise 6.2: window positions rounded up
#
# Write `positions_ceil(H, K, stride, pad)`: the number of window positions
# along one axis in cuda-convnet's rule, $\lceil (H + 2p - K)/s \rceil + 1$,
# with integer arithmetic only (no floats, no `math.ceil`): the check tries
# sides too large for a float to hold the division exactly.

# %% tags=["exercise"]
def positions_ceil(H, K, stride, pad):
    """ceil((H + 2 pad - K) / stride) + 1, in integers."""
    # your code here
    raise NotImplementedError

positions_ceil = solution(positions_ceil)

# %%
check("exercise 6.2 (cuda-convnet's output size)", checks.test_positions_ceil)
