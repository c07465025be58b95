"""Write the learners' notebooks (``notebooks/*.ipynb``) from the readable source below.

    python notebooks/make_notebooks.py           # (re)write every notebook, without outputs
    python notebooks/make_notebooks.py --check   # exit 1 if a committed notebook differs

The notebooks are committed without outputs: CI executes them
(``tests/test_notebooks.py``).  Edit the cells here, never the .ipynb files.
Every notebook follows the same pattern: explain (with the paper's section),
call the library, check (an ``assert`` and the number a reader should expect).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# The first code cell of every notebook: find the repository, the output folder, the data.
SETUP = '''
import os, sys, time
from pathlib import Path
import numpy as np

def find_root(start=None):
    """The repository root: the first folder upwards holding numpy_alexnet/ and pyproject.toml."""
    start = Path(start or Path.cwd()).resolve()
    for p in [start, *start.parents]:
        if (p / "numpy_alexnet").is_dir() and (p / "pyproject.toml").exists():
            return p
    raise FileNotFoundError(f"run this notebook from inside the numpy-alexnet repository (cwd {start})")

ROOT = find_root()
if str(ROOT) not in sys.path:           # works even without `pip install -e .`
    sys.path.insert(0, str(ROOT))
# Figures go to an ignored folder (or $NUMPY_ALEXNET_NB_OUT), never into the repository.
OUT = Path(os.environ.get("NUMPY_ALEXNET_NB_OUT", ROOT / "notebooks" / "_out"))
OUT.mkdir(parents=True, exist_ok=True)
np.set_printoptions(precision=4, suppress=True, linewidth=100)
T0, C0 = time.perf_counter(), time.process_time()
print("repository:", ROOT)
'''

# For the notebooks that read CIFAR-10.
DATA_SETUP = '''
# The shared CIFAR-10 archive (JPEG image folders), relative to the repository root,
# or wherever $NUMPY_ALEXNET_DATA points.
DATA = Path(os.environ.get("NUMPY_ALEXNET_DATA",
                           ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
assert DATA.exists(), f"CIFAR-10 not found at {DATA}: set NUMPY_ALEXNET_DATA to the archive"
print("data:", DATA)
'''

FOOTER = '''
print(f"notebook ran in {time.perf_counter() - T0:.1f} s ({time.process_time() - C0:.1f} s of CPU time)")
'''


# --------------------------------------------------------------------------- #
# 01: the layers one by one
# --------------------------------------------------------------------------- #
NB01 = [
    md('''
# 1. The layers, one by one: forward, backward, and a gradient check

AlexNet (Krizhevsky, Sutskever and Hinton, NIPS 2012) is built from a handful
of layer kinds. Each one here is a class in `numpy_alexnet/layers/` with a `forward`
that keeps in `self.cache` exactly what `backward` needs, and a `backward(dout)`
that returns `dx` and fills `self.grads` (section numbers are the paper's):

| layer | paper | module |
|---|---|---|
| `Conv2D` (with `groups`, the two towers) | 3.2, 3.5 | `conv.py` |
| `ReLU`, `Tanh` | 3.1 | `activation.py` |
| `LocalResponseNorm` | 3.3 | `normalization.py` (notebook 2) |
| `MaxPool2D`, `AvgPool2D` (overlapping) | 3.4 | `pooling.py` (notebook 2) |
| `Dropout` | 4.2 | `dropout.py` |
| `Linear`, `Flatten` | 3.5 | `linear.py` |
| `SoftmaxCrossEntropy` | 3.5 | `loss.py` |

For each: what it computes, a call, and a **gradient check**: the analytic
`backward` against central differences
$\\frac{\\partial f}{\\partial x_i} \\approx \\frac{f(x + h e_i) - f(x - h e_i)}{2h}$,
compared with the norm-wise relative error
$\\frac{\\lVert a - b\\rVert}{\\lVert a\\rVert + \\lVert b\\rVert}$ (`numpy_alexnet.gradcheck.rel_error`).

**What to expect.** In float64 with $h = 10^{-5}$, a correct backward gives
relative errors around $10^{-10}$ to $10^{-9}$; the tests demand below $10^{-7}$.
A wrong backward gives $10^{-2}$ or worse. In float32, rounding alone gives about
$10^{-3}$, which is why checks always run in float64.

The derivations are written out in `docs/layers.md`.
'''),
    code(SETUP),
    code('''
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
'''),
    md('''
## Convolution (sections 3.2 and 3.5): im2col + one matrix product

A convolution slides each of $F$ kernels ($C/G \\times K_H \\times K_W$) over the
zero-padded input. `im2col` unfolds every receptive field into a column, so
the whole layer is one matrix product per group:

$$\\text{out}[n, f, p] = \\sum_k W[f, k]\\, \\text{cols}[n, k, p] + b[f]$$

The backward pass is the same product transposed: $dW = \\sum_{n,p} d\\text{out}\\;\\text{cols}^T$,
$d\\text{cols} = W^T d\\text{out}$, and `col2im` folds $d\\text{cols}$ back into
the image, **adding** where receptive fields overlap.

The output size along one axis is $\\lfloor (H + 2\\,\\text{pad} - K) / \\text{stride} \\rfloor + 1$.
An awkward shape catches most bugs: height different from width, stride 2,
padding 1 and `groups=2` (AlexNet's two towers).
'''),
    code('''
x = rng.standard_normal((2, 4, 9, 6))                     # (N, C, H, W): H != W on purpose
cols = im2col(x, 3, 3, stride=2, pad=1)
print("im2col:", x.shape, "->", cols.shape, " = (N, C*KH*KW, Ho*Wo) = (2, 4*3*3, 5*3)")

conv = Conv2D(4, 6, kernel_size=3, stride=2, padding=1, groups=2,
              weight_std=0.5, bias=0.1, rng=rng, dtype=np.float64)
out = conv.forward(x)
print("Conv2D forward:", x.shape, "->", out.shape, "  W:", conv.params["W"].shape)
'''),
    md('''
Before trusting the fast version, compare it with the definition written as
loops (slow and obviously right: the way the test suite's oracles work).
'''),
    code('''
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
'''),
    md('''
`col2im` is the **adjoint** of `im2col`: for any image $x$ and columns $c$,
$\\langle \\text{im2col}(x), c\\rangle = \\langle x, \\text{col2im}(c)\\rangle$. That identity is
exactly what makes `col2im` the right backward pass for `im2col`, and it is a
one-line check.
'''),
    code('''
c = rng.standard_normal(cols.shape)
lhs, rhs = np.sum(im2col(x, 3, 3, 2, 1) * c), np.sum(x * col2im(c, x.shape, 3, 3, 2, 1))
print(f"<im2col(x), c> = {lhs:.12f}\\n<x, col2im(c)> = {rhs:.12f}   relative difference {abs(lhs - rhs) / abs(lhs):.1e}")
assert abs(lhs - rhs) < 1e-10 * abs(lhs)

report("Conv2D (groups=2)", check_layer(conv, x))
'''),
    md('''
## ReLU and tanh (section 3.1)

ReLU $f(x) = \\max(0, x)$ passes the gradient where $x > 0$ and blocks it
elsewhere; tanh's derivative is $1 - \\tanh^2(x)$, computed from the cached
output. ReLU's kink at 0 has no derivative, so its check uses inputs kept
away from 0 (`spread`).
'''),
    code('''
relu = ReLU()
xr = spread((3, 2, 4, 5))
print("ReLU forward keeps", int((relu.forward(xr) > 0).sum()), "of", xr.size, "values")
report("ReLU", check_layer(relu, xr))
report("Tanh", check_layer(Tanh(), rng.standard_normal((3, 2, 4, 5))))
'''),
    md('''
## Max and average pooling (section 3.4)

Max pooling routes each output's gradient to the input that was the maximum
of its window; average pooling spreads it evenly. With the paper's
overlapping 3x3 windows at stride 2, one input can feed two windows, so the
backward pass **adds**. Notebook 2 looks at this closely. Max pooling's check
needs inputs without near-ties (`spread`).
'''),
    code('''
report("MaxPool2D 3x3/2", check_layer(MaxPool2D(kernel_size=3, stride=2), spread((2, 3, 9, 7))))
report("AvgPool2D 3x3/2", check_layer(AvgPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7))))
'''),
    md('''
## Local response normalization (section 3.3)

$b_i = a_i / (k + \\alpha \\sum_{j} a_j^2)^\\beta$ over $n$ neighbouring channels.
Notebook 2 is about this layer; here only its gradient check, with a large
$\\alpha = 0.5$ so that a window that is off by one channel would show.
'''),
    code('''
report("LocalResponseNorm", check_layer(LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75),
                                        rng.standard_normal((2, 7, 3, 4))))
'''),
    md('''
## Dropout (section 4.2), in both modes

Each hidden neuron is zeroed with probability 0.5 during training. The paper
then uses every neuron at test time and multiplies its output by 0.5
(`mode="paper"`, the default); most libraries instead divide by 0.5 during
training and do nothing at test time (`mode="inverted"`). Both keep the
*expected* activation the same in training and at test time.

The gradient check holds the dropout mask fixed (`check_layer` restores the
layer's random generator before every forward).
'''),
    code('''
big = np.ones((2000, 500))
for mode in ("paper", "inverted"):
    d = Dropout(rate=0.5, mode=mode, seed=1)
    train_mean, test_mean = d.forward(big, train=True).mean(), d.forward(big, train=False).mean()
    print(f"{mode:>8s}: mean activation in training {train_mean:.4f}, at test time {test_mean:.4f}")
    assert abs(train_mean - test_mean) < 0.01       # equal in expectation
    report(f"Dropout ({mode})", check_layer(Dropout(rate=0.5, mode=mode, seed=3), rng.standard_normal((4, 9))))
'''),
    md('''
## Linear and Flatten (the fully connected fc6, fc7, fc8)

$\\text{out} = xW + b$, so $dx = d\\text{out}\\,W^T$, $dW = x^T d\\text{out}$,
$db = \\sum_n d\\text{out}$. `Flatten` is a reshape whose backward is the
reverse reshape.
'''),
    code('''
report("Linear", check_layer(Linear(7, 5, weight_std=0.5, bias=0.2, rng=rng, dtype=np.float64),
                             rng.standard_normal((3, 7))))
report("Flatten", check_layer(Flatten(), rng.standard_normal((2, 3, 4, 5))))
'''),
    md('''
## Softmax cross-entropy (section 3.5)

$L = -\\frac{1}{N}\\sum_n \\log \\text{softmax}(z_n)_{y_n}$ and
$\\partial L / \\partial z = (\\text{softmax}(z) - \\text{onehot}(y)) / N$.
Two numbers to know: with all logits equal, the loss is $\\log K$
($\\log 10 = 2.3026$ for CIFAR-10, $\\log 1000 = 6.9078$ for ImageNet),
which is what a freshly initialized network should print at its first step.
'''),
    code('''
loss_fn = SoftmaxCrossEntropy()
labels = np.array([0, 3, 9, 4])
print(f"loss at equal logits: {loss_fn.forward(np.zeros((4, 10)), labels):.4f}   (expect log 10 = {np.log(10):.4f})")
assert abs(loss_fn.forward(np.zeros((4, 10)), labels) - np.log(10)) < 1e-12

z = rng.standard_normal((4, 10))
loss_fn.forward(z, labels)
dz = loss_fn.backward()
numeric = numerical_gradient(lambda: float(loss_fn.forward(z, labels)), z)
report("SoftmaxCrossEntropy", {"z": rel_error(dz, numeric)})
'''),
    md('''
## A whole small network, end to end

`check_net` runs the same check through a whole `Sequential` under the loss:
a tiny network with AlexNet's shape (strided conv, LRN, overlapping pools,
a grouped conv, a conv that crosses the towers, dropout, fully connected
layers) on a 23x17 input.
'''),
    code('''
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
'''),
    md('''
## Why float64: the same check in float32

The same convolution's check in float32, with the same step $h = 10^{-5}$,
shows the rounding floor: float32 keeps about 7 digits, so $x \\pm h$ is
itself rounded and $f(x+h) - f(x-h)$ loses most of its digits. The error
rises to around $10^{-3}$ although nothing is wrong.
'''),
    code('''
conv32 = Conv2D(4, 6, 3, stride=2, padding=1, groups=2, weight_std=0.5, bias=0.1,
                rng=np.random.default_rng(1), dtype=np.float32)
err32 = check_layer(conv32, rng.standard_normal((2, 4, 9, 6)).astype(np.float32))
print("float32, h = 1e-5:", {k: f"{v:.1e}" for k, v in err32.items()}, "  (expect ~1e-3)")
assert max(err32.values()) > 1e-5        # far above the float64 errors: rounding, not a bug
'''),
    md('''
## Check: every backward pass agrees with central differences

**Expected:** every relative error below $10^{-7}$, most near $10^{-10}$.
'''),
    code('''
for name, err in sorted(results.items(), key=lambda kv: kv[1]):
    print(f"{name:>22s}  worst relative error {err:.2e}")
worst = max(results.values())
print(f"\\nworst of all: {worst:.2e}  (expect < 1e-7)")
assert worst < TOL, results
''' + FOOTER),
]


# --------------------------------------------------------------------------- #
# 02: local response normalization and overlapping pooling
# --------------------------------------------------------------------------- #
NB02 = [
    md("""
# 2. Local response normalization and overlapping pooling

Two of the paper's less common ingredients, each worth about half a point
to a point and a half of error:

* **Local response normalization** (section 3.3): each activation is divided
  by a power of the summed squares of its neighbours *across channels* at the
  same pixel: a form of lateral inhibition. Reported gain: top-1 1.4%, top-5 1.2%.
* **Overlapping pooling** (section 3.4): 3x3 max-pool windows at stride 2, so
  neighbouring windows share a row or a column. Reported gain over 2x2/2:
  top-1 0.4%, top-5 0.3%.

For each: what it computes, the library's layer against the formula, and the
trap that catches implementations: for LRN, what `alpha` means (the
**alpha/n convention**); for pooling, that the backward pass must **add**
where windows overlap.
"""),
    code(SETUP),
    code("""
from numpy_alexnet.layers import LocalResponseNorm, MaxPool2D, AvgPool2D
from numpy_alexnet.layers.base import conv_output_size
from numpy_alexnet.gradcheck import check_layer, rel_error

rng = np.random.default_rng(0)
"""),
    md(r"""
## Local response normalization: the formula

With $a^i_{x,y}$ the activity of kernel $i$ at pixel $(x, y)$ after the ReLU,
and $N$ kernels in the layer:

$$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\, i-n/2)}^{\min(N-1,\, i+n/2)} \big(a^j_{x,y}\big)^2\Big)^{\beta}$$

with $k = 2$, $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$, after the ReLU of
conv1 and conv2. Two details: $n/2$ is the half-width rounded down (2 for
$n = 5$), and the window is **truncated** at the first and last channel,
not wrapped. Here is the formula as a loop over channels, straight from the
paper, next to the library's layer (`numpy_alexnet/layers/normalization.py`).
"""),
    code("""
def lrn_paper(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    \"\"\"Section 3.3, one channel at a time: alpha multiplies the sum of squares.\"\"\"
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
err = rel_error(lrn.forward(a), lrn_paper(a))
print(f"LocalResponseNorm vs the paper's formula: relative error {err:.1e}   (expect ~1e-16)")
assert err < 1e-12
"""),
    md("""
## What it does: a strong neighbour suppresses you

One pixel, 16 channels. Channel 7 has activity 100. In the first case its
neighbours are silent; in the second, channels 5 to 9 are all at 100.
"""),
    code("""
alone = np.zeros((1, 16, 1, 1)); alone[0, 7] = 100.0
crowd = np.zeros((1, 16, 1, 1)); crowd[0, 5:10] = 100.0
b_alone, b_crowd = lrn.forward(alone)[0, 7, 0, 0], lrn.forward(crowd)[0, 7, 0, 0]
print(f"channel 7 alone:          100 -> {b_alone:.2f}   (= 100 / (2 + 1e-4 * 100^2)^0.75 = 100 / 3^0.75)")
print(f"channel 7 among 4 equals: 100 -> {b_crowd:.2f}   (= 100 / (2 + 1e-4 * 5 * 100^2)^0.75 = 100 / 7^0.75)")
assert np.isclose(b_alone, 100 / 3 ** 0.75) and np.isclose(b_crowd, 100 / 7 ** 0.75)
"""),
    md("""
And the truncation at the edges: channel 0's window holds channels 0, 1, 2
only, so activity in channel 3 leaves channel 0 untouched but reaches
channels 1 to 5.
"""),
    code("""
x = np.ones((1, 8, 1, 1)); x[0, 3] = 300.0
changed = np.flatnonzero(~np.isclose(lrn.forward(x)[0, :, 0, 0], lrn.forward(np.ones((1, 8, 1, 1)))[0, :, 0, 0]))
print("channels whose output changes when channel 3 fires:", changed.tolist(), "  (expect [1, 2, 3, 4, 5])")
assert changed.tolist() == [1, 2, 3, 4, 5]
"""),
    md(r"""
## The alpha/n trap

The paper's $\alpha$ multiplies the **sum**. Caffe's `LRN` layer and PyTorch's
`torch.nn.LocalResponseNorm` divide their `alpha` by $n$ first:

$$b_i = a_i \Big/ \Big(k + \frac{\alpha}{n} \sum_j a_j^2\Big)^{\beta}$$

So copying the paper's `alpha=1e-4` into one of them gives a normalization
five times weaker than the paper's. The paper's layer is
`torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)` in PyTorch, and
`local_size: 5, alpha: 0.0005, beta: 0.75, k: 2` in Caffe. (Caffe's own
reference model `bvlc_alexnet` writes `alpha: 0.0001` and leaves `k` at its
default of 1: not the paper's layer, whatever else it reproduces.)
TensorFlow's `tf.nn.local_response_normalization` follows the paper's
convention but takes `depth_radius`, the half-width:
`depth_radius=2, bias=2, alpha=1e-4, beta=0.75`.

Numerically, with activations of the size a trained conv1 produces:
"""),
    code("""
def lrn_alpha_over_n(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    \"\"\"The Caffe/PyTorch convention: alpha is divided by n (the window is still truncated
    at the edges, and PyTorch divides by n even there, as here).\"\"\"
    return lrn_paper(a, n, k, alpha / n, beta)

paper = lrn.forward(a)                                    # the library: the paper's convention
misread = lrn_alpha_over_n(a, alpha=1e-4)                 # the paper's number in the other convention
fixed = lrn_alpha_over_n(a, alpha=5e-4)                   # alpha multiplied by n: the paper again
print(f"alpha=1e-4 read as alpha/n:  relative difference from the paper {rel_error(misread, paper):.3f}"
      f"  (outputs up to {np.max(misread / np.where(paper > 0, paper, 1)):.2f}x larger)")
print(f"alpha=5e-4 read as alpha/n:  relative difference from the paper {rel_error(fixed, paper):.1e}")
assert rel_error(misread, paper) > 0.05        # a visible, systematic difference
assert rel_error(fixed, paper) < 1e-12         # the same layer
"""),
    md("""
If PyTorch is installed, its layer confirms it: `alpha=5e-4` reproduces the
paper's normalization (this cell is skipped without PyTorch; the library
never needs it).
"""),
    code("""
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch not installed: skipping the comparison")
if torch is not None:
    t = torch.nn.functional.local_response_norm(torch.tensor(a), size=5, alpha=5e-4, beta=0.75, k=2.0).numpy()
    t_wrong = torch.nn.functional.local_response_norm(torch.tensor(a), size=5, alpha=1e-4, beta=0.75, k=2.0).numpy()
    print(f"torch alpha=5e-4 vs the paper: {rel_error(t, paper):.1e}   torch alpha=1e-4 vs the paper: {rel_error(t_wrong, paper):.3f}")
    assert rel_error(t, paper) < 1e-12 and rel_error(t_wrong, paper) > 0.05
"""),
    md(r"""
## LRN backward

Write $s_i = k + \alpha \sum_{j \in w(i)} a_j^2$ (the *scale*, kept from the
forward pass), so $b_i = a_i s_i^{-\beta}$. Since $j \in w(i)$ exactly when
$i \in w(j)$ (the window is symmetric),

$$\frac{\partial L}{\partial a_j} = \frac{\partial L}{\partial b_j} s_j^{-\beta}
 - 2\alpha\beta\, a_j \sum_{i \in w(j)} \frac{\partial L}{\partial b_i}\, \frac{b_i}{s_i}$$

the same windowed channel sum as the forward pass, applied to
$\partial L/\partial b \cdot b / s$. The check uses the paper's constants on
large activations (where the second term matters) and a large $\alpha$ on
unit-sized ones, 7 channels so the edge windows are exercised.
**Expected:** relative errors near $10^{-10}$, below $10^{-7}$.
"""),
    code("""
e1 = check_layer(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75), rng.normal(0, 80, size=(2, 7, 3, 4)))
e2 = check_layer(LocalResponseNorm(n=5, k=2.0, alpha=0.5, beta=0.75), rng.standard_normal((2, 7, 3, 4)))
print(f"LRN dx, paper's constants, activations ~80: {e1['x']:.1e}")
print(f"LRN dx, alpha = 0.5, activations ~1:       {e2['x']:.1e}")
assert e1["x"] < 1e-7 and e2["x"] < 1e-7
"""),
    md(r"""
## Overlapping pooling (section 3.4)

A pooling layer summarizes each $z \times z$ window, placed every $s$ pixels.
Traditional pooling has $s = z$ (no overlap); AlexNet uses $z = 3$, $s = 2$.
The output size is $\lfloor (H - z)/s \rfloor + 1$ (floor mode, as Caffe and
PyTorch; cuda-convnet rounds up). In AlexNet the two choices give the same
sizes, 55 -> 27, 27 -> 13, 13 -> 6; what changes is that each output sees a
3x3 neighbourhood and neighbouring windows share a row or column.
"""),
    code("""
for H in (55, 27, 13):
    print(f"{H:>3} -> overlapping 3x3/2: {conv_output_size(H, 3, 2, 0):>2}    non-overlapping 2x2/2: {conv_output_size(H, 2, 2, 0):>2}")
assert [conv_output_size(H, 3, 2, 0) for H in (55, 27, 13)] == [27, 13, 6]
# The Figure-1 CIFAR net's pools, in floor mode (cuda-convnet's ceil mode gives 16, 8, 4):
print("CIFAR 32x32 through three 3x3/2 pools:", 32, "->", conv_output_size(32, 3, 2, 0), "->",
      conv_output_size(15, 3, 2, 0), "->", conv_output_size(7, 3, 2, 0))
"""),
    md("""
How many windows does each input pixel fall in? The average pool's backward
pass answers it: send 9 (= 3x3, undoing the division) back from every output,
and each input receives 9/9 from each window containing it.
"""),
    code("""
counts = AvgPool2D(kernel_size=3, stride=2)
counts.forward(np.zeros((1, 1, 7, 9)))
c = counts.backward(np.full((1, 1, 3, 4), 9.0))[0, 0]      # (7, 9): windows covering each pixel
print(c.astype(int))
assert c.max() == 4 and c.min() == 1                       # corners of overlaps are in 4 windows
"""),
    md("""
## The backward trap: add, do not assign

In max pooling, the gradient of each output goes to the input that was the
maximum of its window. With overlapping windows one input can be the maximum
of several windows, and it must receive the **sum** of their gradients. Below,
the largest value of a 5x5 input sits at the centre, which lies in all four
3x3/2 windows; with $\\partial L/\\partial\\text{out} = 1$ everywhere, its
gradient must be 4. The "assign" version, which writes each window's gradient
into place, gets 1: a silent bug that a gradient check catches.
"""),
    code("""
x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5) / 100
x[0, 0, 2, 2] = 1.0                                        # the maximum of all four windows
pool = MaxPool2D(kernel_size=3, stride=2)
print("forward (every window's max is the centre):", pool.forward(x)[0, 0].tolist())
dx = pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
print("library backward, gradient at the centre:", dx[2, 2])

def maxpool_backward_assign(x, dout, z=3, s=2):
    \"\"\"The bug: '=' where '+=' belongs.\"\"\"
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = x[0, 0, i * s:i * s + z, j * s:j * s + z]
            r, q = np.unravel_index(np.argmax(win), win.shape)
            dx[0, 0, i * s + r, j * s + q] = dout[0, 0, i, j]      # overwrites, never adds
    return dx

print("'assign' backward, gradient at the centre:", maxpool_backward_assign(x, np.ones((1, 1, 2, 2)))[0, 0, 2, 2])
assert dx[2, 2] == 4.0 and dx.sum() == 4.0
"""),
    md("""
Ties: when a window holds equal maxima, the gradient goes to the first of
them in row-major order (top-most, then left-most), as `argmax` picks it.
That is a choice (the derivative does not exist there), which is why the
gradient checks use inputs without ties.
"""),
    code("""
flat = np.ones((1, 1, 3, 3))
pool.forward(flat)
print(pool.backward(np.ones((1, 1, 1, 1)))[0, 0])
assert pool.backward(np.ones((1, 1, 1, 1)))[0, 0, 0, 0] == 1.0
"""),
    md("""
## Check: gradients of the overlapping pools

On an awkward shape (9x7, so height differs from width) with distinct inputs.
**Expected:** relative errors near $10^{-11}$, below $10^{-7}$.
"""),
    code("""
n = 2 * 3 * 9 * 7
x = (rng.permutation(n) - n / 2 + 0.5).reshape(2, 3, 9, 7) / n      # distinct values: no ties
e_max = check_layer(MaxPool2D(kernel_size=3, stride=2), x)["x"]
e_avg = check_layer(AvgPool2D(kernel_size=3, stride=2), rng.standard_normal((2, 3, 9, 7)))["x"]
print(f"MaxPool2D 3x3/2 dx: {e_max:.1e}    AvgPool2D 3x3/2 dx: {e_avg:.1e}   (expect < 1e-7)")
assert e_max < 1e-7 and e_avg < 1e-7
""" + FOOTER),
]


# --------------------------------------------------------------------------- #
# 03: a tour of AlexNet
# --------------------------------------------------------------------------- #
NB03 = [
    md("""
# 3. A tour of AlexNet

The network of section 3.5 and Figure 2, built by `numpy_alexnet.alexnet()`
from a table (`numpy_alexnet.models.alexnet_spec`): one row a layer, read it
next to the paper. This notebook follows an image through it:

1. the shapes from 227x227x3 to 6x6x256 and on to 1000 scores;
2. the parameters per layer, to the paper's 60 million (60,965,224 exactly);
3. the two towers (section 3.2) and the only places they talk;
4. the 224/227 puzzle: why the paper's "224x224" cannot give its 55x55.
"""),
    code(SETUP),
    code("""
from numpy_alexnet import alexnet, SoftmaxCrossEntropy
from numpy_alexnet.models import alexnet_spec
from numpy_alexnet.layers import Conv2D
from numpy_alexnet.layers.base import conv_output_size
from numpy_alexnet.gradcheck import rel_error

t = time.perf_counter()
net = alexnet()                       # float32, weights N(0, 0.01), the paper's biases
print(f"built in {time.perf_counter() - t:.1f} s (61 million random numbers)")
print(net.summary())
"""),
    md("""
## From 227 to 6

Each convolution or pool maps a side of length $H$ to
$\\lfloor (H + 2\\,\\text{pad} - K)/\\text{stride}\\rfloor + 1$:

* conv1: 11x11 at stride 4, no padding: (227 - 11)/4 + 1 = **55**
* pool1: 3x3 at stride 2: (55 - 3)/2 + 1 = **27**; conv2 keeps 27 (5x5, pad 2)
* pool2: (27 - 3)/2 + 1 = **13**; conv3, conv4, conv5 keep 13 (3x3, pad 1)
* pool5: (13 - 3)/2 + 1 = **6**, and 6 x 6 x 256 = 9216 inputs to fc6.
"""),
    code("""
shapes = {layer.name: s for layer, s in zip(net, net.shapes())}
for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "flatten", "fc6", "fc7", "fc8"):
    print(f"{name:>8}: {shapes[name]}")
assert shapes["conv1"] == (96, 55, 55) and shapes["pool1"] == (96, 27, 27)
assert shapes["pool2"] == (256, 13, 13) and shapes["pool5"] == (256, 6, 6)
assert shapes["flatten"] == (9216,) and shapes["fc8"] == (1000,)
"""),
    md("""
One image through the whole network (test mode: dropout multiplies by 0.5).
At initialization the 1000 scores are small, the softmax is nearly uniform,
and the loss is close to $\\log 1000 = 6.91$: the number the first line of a
training log should show.
"""),
    code("""
x = np.random.default_rng(0).normal(0, 60, size=(2, 3, 227, 227)).astype(np.float32)  # ~ mean-subtracted pixels
t = time.perf_counter()
scores = net.forward(x, train=False)
print(f"forward of 2 images: {time.perf_counter() - t:.2f} s; scores {scores.shape}, std {scores.std():.3f}")
loss = float(SoftmaxCrossEntropy().forward(scores, np.array([3, 7])))
print(f"loss {loss:.3f}   (expect about log 1000 = {np.log(1000):.3f})")
assert scores.shape == (2, 1000) and abs(loss - np.log(1000)) < 0.5
"""),
    md("""
## Parameters per layer

A convolution with $F$ kernels of size $K \\times K$ over $C$ channels in $G$
groups has $F \\cdot (C/G) \\cdot K^2$ weights and $F$ biases; a fully connected
layer has $D_\\text{in} D_\\text{out} + D_\\text{out}$. Counted by hand and by the
library, with the multiply-adds of one forward pass (weights times output
positions):
"""),
    code("""
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
"""),
    md("""
**Check.** The paper says "60 million parameters"; PAPER.md's table adds up
to **60,965,224**, about 96% of them in the three fully connected layers.
One forward pass is about **724 million** multiply-adds, 92% of them in the
convolutions.
"""),
    code("""
fc_share = sum(net[n].num_params() for n in ("fc6", "fc7", "fc8")) / net.num_params()
print(f"total parameters {net.num_params():,}   (expect 60,965,224); fully connected share {fc_share:.1%}")
print(f"multiply-adds per image {total_macs / 1e6:.1f} M   (expect about 724 M)")
assert net.num_params() == total_params == 60_965_224
assert abs(total_macs / 724e6 - 1) < 0.01
"""),
    md("""
## The two towers and where they talk (section 3.2, Figure 2)

The paper split the network over two GTX 580 GPUs with 3 GB each: every
layer's kernels are halved between them, and "the GPUs communicate only in
certain layers": conv3 takes input from all kernel maps of conv2, while
conv2, conv4 and conv5 see only the maps on their own GPU; the fully
connected layers see everything.

On one device, "each half of the kernels sees only its own half of the input
channels" is exactly a **grouped convolution** with `groups=2`. So the
weights of conv2 are 256 kernels of 5x5x**48**, not 5x5x96:
"""),
    code("""
for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
    layer = net[name]
    talks = "both towers" if layer.groups == 1 else "own tower only"
    print(f"{name}: W {layer.params['W'].shape}, groups={layer.groups}: each kernel sees {layer.params['W'].shape[1]} channels ({talks})")
print("fc6, fc7, fc8: fully connected, see both towers")
assert [net[n].groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
"""),
    md("""
Two checks that the grouping really is the two towers:

1. conv2 equals two separate convolutions: tower 1's 128 kernels on channels
   0-47, tower 2's on channels 48-95.
2. Changing tower 2's input (channels 48-95 of pool1) leaves tower 1's conv2
   output (kernels 0-127) exactly unchanged, while conv3, where the towers
   meet, changes everywhere.
"""),
    code("""
pool1_out = x[:1]
for layer in net.layers[:4]:                           # conv1, relu1, norm1, pool1
    pool1_out = layer.forward(pool1_out, train=False)
conv2 = net["conv2"]
both = conv2.forward(pool1_out)                        # (1, 256, 27, 27)
towers = []
for t_idx in range(2):
    half = Conv2D(48, 128, 5, padding=2, rng=np.random.default_rng(0))
    half.params["W"] = conv2.params["W"][128 * t_idx:128 * (t_idx + 1)]
    half.params["b"] = conv2.params["b"][128 * t_idx:128 * (t_idx + 1)]
    towers.append(half.forward(np.ascontiguousarray(pool1_out[:, 48 * t_idx:48 * (t_idx + 1)])))
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
"""),
    md("""
**An interpretation worth knowing: LRN and the tower boundary.** On two
GPUs, each tower normalizes its own 48 (conv1) or 128 (conv2) maps, since
the towers do not communicate there. So `norm1` and `norm2` here have
`groups=2`: two windows, each truncated at its tower's edge. Caffe's
one-device AlexNet (and `bvlc_alexnet.npy`) instead runs one window over all
96 and 256 channels, so the two channels on each side of the boundary reach
into the other tower; `numpy_alexnet.pretrained.use_caffe_lrn` builds that.
The check: change only tower 2's maps and see which tower-1 channels move.
"""),
    code("""
from numpy_alexnet.layers import LocalResponseNorm
relu1_out = np.maximum(net["conv1"].forward(x[:1]), 0)
poked = relu1_out.copy(); poked[:, 48:] *= 3.0                    # only tower 2's maps change

def moved(lrn):
    diff = np.abs(lrn.forward(relu1_out) - lrn.forward(poked)).max(axis=(0, 2, 3))
    return np.flatnonzero(diff[:48] > 0).tolist()                 # tower-1 channels that change

print("per tower (the paper, groups=2):   ", moved(net["norm1"]), "  (expect [])")
print("one window over all 96 (Caffe):    ", moved(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)), "  (expect [46, 47])")
assert net["norm1"].groups == 2 and moved(net["norm1"]) == []
assert moved(LocalResponseNorm(n=5, k=2.0, alpha=1e-4, beta=0.75)) == [46, 47]
"""),
    md("""
## The 224/227 puzzle

Section 3.5 says the input is 224x224x3 and conv1 uses stride 4 to give
55x55x96. But $(224 - 11)/4 + 1 = 54.25$: with no padding, 224 gives 54
(floor), and the network would end in 5x5x256 = 6400 features, not the 9216
that fc6 expects. Two repairs are in use:

* **227x227 input, no padding** (Caffe, and this library): $(227 - 11)/4 + 1 = 55$ exactly;
* **224x224 input, padding 2** (torchvision): $\\lfloor(224 + 4 - 11)/4\\rfloor + 1 = 55$.

The paper's training crops are described as 224x224 patches of the 256x256
images; the library's `alexnet()` takes 227x227 inputs (see `docs/faithfulness.md`).
"""),
    code("""
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
    net.forward(np.zeros((1, 3, 224, 224), np.float32))
except ValueError as err:                              # the network refuses, and says why
    print("net.forward(224x224) ->", type(err).__name__ + ":", err)
"""),
    md("""
## The torchvision AlexNet is a different network

`torchvision.models.alexnet` is the single-tower variant of Krizhevsky's
later "one weird trick" paper: 64, 192, 384, 256, 256 kernels, no LRN, no
groups, 224x224 input with padding 2. It is offered here, under its own
name, only so its weights can be loaded: `numpy_alexnet.alexnet_torchvision()`.
"""),
    code("""
from numpy_alexnet.models import alexnet_torchvision_spec
tv_params = 0
for name, kind, args in alexnet_torchvision_spec():
    if kind == "conv":
        tv_params += args["out_channels"] * args["in_channels"] * args["kernel_size"] ** 2 + args["out_channels"]
    elif kind == "linear":
        tv_params += args["in_features"] * args["out_features"] + args["out_features"]
print(f"torchvision AlexNet: {tv_params:,} parameters (expect 61,100,840); the paper's: {net.num_params():,}")
assert tv_params == 61_100_840
""" + FOOTER),
]


# --------------------------------------------------------------------------- #
# 04: training on CIFAR-10, ReLU versus tanh
# --------------------------------------------------------------------------- #
# Shared by notebooks 4 and 5: the same subset, so the decoded-image cache is shared.
LOAD_SUBSET = """
from numpy_alexnet.data import load_dataset, EvalTransform, BatchIterator, CIFAR10_CLASSES

PER_CLASS = 300                       # the first 300 images of each class, in each split
t = time.perf_counter()
ds = load_dataset(DATA, limit_per_class=PER_CLASS, progress=False)   # decoded once, then cached
print(f"loaded in {time.perf_counter() - t:.1f} s:",
      {name: (len(split), split.images.shape[1:], split.images.dtype.name) for name, split in ds.splits.items()})
print("classes:", ", ".join(ds.classes))
assert len(ds.train) == 10 * PER_CLASS and ds.train.images.shape[1:] == (3, 32, 32)
"""

NB04 = [
    md("""
# 4. Training on CIFAR-10: ReLU versus tanh (the paper's Figure 1)

Section 3.1 argues for rectified linear units, $f(x) = \\max(0, x)$, over the
saturating $\\tanh$: where $|x|$ is large, $\\tanh'(x) = 1 - \\tanh^2(x)$ is
nearly 0 and gradients fade, while a ReLU passes the gradient unchanged
wherever it is active. Figure 1 is the evidence:

> "A four-layer convolutional neural network with ReLUs (solid line) reaches
> a 25% training error rate on CIFAR-10 six times faster than an equivalent
> network with tanh neurons (dashed line). The learning rates for each network
> were chosen independently to make training as fast as possible. No
> regularization of any kind was employed."

The paper gives no layer sizes. `numpy_alexnet.cifar_fig1()` is the nearest
public definition, the cuda-convnet CIFAR-10 example (three 5x5 convolutions
with 32, 32 and 64 kernels, 3x3/2 pools, one fully connected layer), trained
as cuda-convnet did: raw 0-255 pixels minus the mean image, batch 128,
momentum 0.9, no weight decay, no dropout, no augmentation.

This notebook does two things:

1. **a short live run** of both networks on 3,000 CIFAR-10 images for three
   epochs: enough to watch the curves separate, far too short to reach 25%;
2. **the full study's committed results** (`docs/results/relu_vs_tanh*.json`,
   written by `numpy-alexnet relu-vs-tanh`): all 50,000 images, learning
   rates chosen by a sweep, several seeds, and the epoch at which each run
   first reaches 25% training error.
"""),
    code(SETUP),
    code(DATA_SETUP),
    code(LOAD_SUBSET),
    md("""
## Preprocessing: subtract the mean image (section 4)

The only preprocessing in the paper: "subtracting the mean activity over the
training set from each pixel". `Dataset.stats()` computes the mean image of the
training split; `EvalTransform` turns a uint8 batch into float32 minus that
mean, on the raw 0-255 scale. Check: over the training set, every pixel now
has mean 0.
"""),
    code("""
stats = ds.stats()
to_input = EvalTransform(stats.mean_image, crop_size=None, mode="full")   # no crop, no scaling
x_all = to_input(ds.train.images)
print("input batch:", x_all.shape, x_all.dtype, f"  pixel std {x_all.std():.1f} (raw 0-255 scale)")
print(f"largest |mean| of any pixel over the training set: {np.abs(x_all.mean(axis=0)).max():.2e}   (expect ~0)")
assert np.abs(x_all.mean(axis=0)).max() < 1e-3
del x_all
"""),
    md("""
## The Figure-1 network

Initialized as cuda-convnet's `layers-80sec.cfg`: weights N(0, 1e-4) in conv1
and N(0, 0.01) elsewhere (`numpy_alexnet.models.CUDA_CONVNET_STDS`), biases 0.
The pools use floor mode, so 32 -> 15 -> 7 -> 3 and the last layer sees
3x3x64 = 576 features (cuda-convnet rounds up to 4x4; see `docs/faithfulness.md`).
"""),
    code("""
from numpy_alexnet import cifar_fig1, MomentumSGD
print(cifar_fig1("relu").summary())
"""),
    md("""
## A short live run

A controlled comparison: both networks with the same initialization scheme,
the same data order (seed 0) and the **same learning rate, 0.003**, so that
the neuron is the only difference; trained by the library's `Trainer` with
`MomentumSGD` and a fixed learning rate. (The paper instead chose each
network's rate on its own "to make training as fast as possible"; the study
below does that with a sweep.) The *training error* is the running error over
each epoch's batches as they were trained on: the quantity Figure 1 plots
(cuda-convnet reported it that way).

On this machine's CPU one step of batch 128 takes about half a second, so
this cell takes a minute or two.
"""),
    code("""
from numpy_alexnet.training import Trainer, FixedSchedule

EPOCHS, LR = 3, 0.003
runs = {}
for act in ("relu", "tanh"):
    net = cifar_fig1(act, seed=0)
    opt = MomentumSGD(net, lr=LR, momentum=0.9, weight_decay=0.0)       # no regularization
    batches = BatchIterator(ds.train.images, ds.train.labels, 128, seed=0, transform=to_input)
    trainer = Trainer(net, opt, batches, schedule=FixedSchedule(), progress=False, quiet=True)
    t = time.perf_counter()
    history = trainer.fit(EPOCHS)
    runs[act] = {"errors": [row["train_error"] for row in history],
                 "first_loss": trainer.step_log[0]["loss"], "steps": trainer.step}
    print(f"{act}: training error by epoch {np.round(runs[act]['errors'], 3).tolist()}  "
          f"({trainer.step} steps, {time.perf_counter() - t:.0f} s)")
"""),
    md("""
The curves, drawn by `numpy_alexnet.viz.relu_vs_tanh_plot` (the function the
`relu-vs-tanh` command uses), ReLU solid and tanh dashed as in the paper. The
dotted line is the paper's 25% target: far below where a few epochs on 3,000
images can get.
"""),
    code("""
from IPython.display import Image, display
from numpy_alexnet.viz import relu_vs_tanh_plot

panel = {"title": f"{len(ds.train):,} CIFAR-10 training images, lr {LR:g}, batch 128",
         "runs": [{"activation": act, "train_error": runs[act]["errors"], "label": act} for act in runs]}
fig = relu_vs_tanh_plot([panel], OUT / "fig1_live.png", suptitle="A short live run (not the study)")
display(Image(filename=str(OUT / "fig1_live.png")))
"""),
    md("""
## Check

* At the first step both networks are untrained and all 10 scores nearly
  equal: the loss should be $\\log 10 = 2.3026$.
* Both learn: the training error falls, epoch after epoch, well below the 90%
  of guessing.
* At equal learning rates ReLU is ahead after 3 epochs. **Expected** (seed 0):
  about 0.76 for ReLU against 0.79 for tanh, although tanh leads after the
  first epoch (0.82 against 0.84).

A run this short says little about the paper's claim, which is about the
epochs needed to reach 25%. It is also sensitive to the learning rates: with
each network at its own rate, 0.01 for ReLU and 0.03 for tanh (the study's
provisional rates when this was written; the full study's sweep later chose
0.003 and 0.01 for this regime: `numpy_alexnet.training.study.CHOSEN`), tanh
is the one ahead after 3 epochs on this subset (we measured 0.67 against
0.73). Only the full study below measures the claim.
"""),
    code("""
for act, r in runs.items():
    print(f"{act}: first loss {r['first_loss']:.4f} (expect {np.log(10):.4f}); "
          f"error {r['errors'][0]:.3f} -> {r['errors'][-1]:.3f}")
    assert abs(r["first_loss"] - np.log(10)) < 0.01
    assert r["errors"][-1] < r["errors"][0] and r["errors"][-1] < 0.85
print(f"after {EPOCHS} epochs: ReLU {runs['relu']['errors'][-1]:.3f}, tanh {runs['tanh']['errors'][-1]:.3f}")
assert runs["relu"]["errors"][-1] < runs["tanh"]["errors"][-1]
"""),
    md("""
## The full study's results

`numpy-alexnet relu-vs-tanh` runs the real measurement
(`numpy_alexnet/training/study.py`): for each input *regime* (the paper's raw
pixels with cuda-convnet's initialization, and unit-variance inputs with
1/sqrt(fan-in) initialization) and each neuron type, a learning-rate sweep,
then several seeds at the chosen rate, each trained on all 50,000 images until
it reaches 25% training error or a cap; the number reported is the ratio of
epochs, tanh over ReLU, per seed. The ratio is known to depend on input scale,
initialization and learning rate, which is why the conditions are reported
with it. Its committed output is read here; nothing is retrained. The
`--quick` and `--reduced` forms write `relu_vs_tanh_quick.json` and
`relu_vs_tanh_reduced.json`, which are not the study.
"""),
    code("""
import json
from numpy_alexnet.training.study import figure, format_table

reports = []
for path in sorted((ROOT / "docs" / "results").glob("relu_vs_tanh*.json")):
    report = json.loads(path.read_text())
    if {"form", "settings", "regimes"} <= set(report):          # written by `numpy-alexnet relu-vs-tanh`
        reports.append((path, report))
    else:
        print(f"{path.relative_to(ROOT)}: a related record, not a study report: {report.get('what', '?')}\\n")
if not any(report.get("is_full_study") for _, report in reports):
    print("The full study's results are not yet committed (docs/results/relu_vs_tanh.json does not exist).\\n"
          "Produce them with:  numpy-alexnet relu-vs-tanh --data ../shared/data/cifar10-jpeg.tar.gz\\n")
for path, report in reports:
    kind = "the full study" if report.get("is_full_study") else f"the '{report['form']}' form, NOT the full study"
    if not report.get("complete", True):
        kind += "; INCOMPLETE: some runs were still training when it was written (--report-only)"
    print(f"{path.relative_to(ROOT)}: {kind}")
    print(f"  command: {report['command']}\\n  machine: {report['machine']}, backend {report['backend']}")
    print(format_table(report))
    for regime, entry in report["regimes"].items():
        assert entry["runs"] and "summary" in entry, (path, regime)        # a complete report
        sm = entry["summary"]
        if "ratio_mean" in sm:
            print(f"  {regime}: tanh needs {'at least ' if sm['lower_bound'] else ''}"
                  f"{sm['ratio_mean']:.1f}x the epochs of ReLU (the paper: about 6x)")
    figure(report, OUT / (path.stem + ".png"))
    display(Image(filename=str(OUT / (path.stem + ".png"))))
""" + FOOTER),
]


# --------------------------------------------------------------------------- #
# 05: what the network learned
# --------------------------------------------------------------------------- #
NB05 = [
    md("""
# 5. What the network learned: Figures 3 and 4, and a confusion matrix

Section 6.1 of the paper looks inside the trained network two ways:

* **Figure 3**: the 96 kernels of conv1 (11x11x3), shown as small RGB
  images: oriented edges, frequency patterns and colour blobs. The 48 kernels
  of the first GPU came out largely colour-agnostic, the 48 of the second
  largely colour-specific, in every run.
* **Figure 4**: for a few test images, the training images whose last hidden
  layer (fc7, 4096 numbers) is nearest in *Euclidean distance*: they share
  the query's class even where their pixels differ a lot (pose, colour,
  background).

AlexNet needs days of ImageNet training on GPUs; here the Figure-1 CIFAR-10
network trains for a minute on 3,000 images and is looked at the same ways,
with the library's own plotting functions (`numpy_alexnet/viz.py`). Its
last hidden layer is the flattened pool3 output, 3x3x64 = **576 numbers**,
standing in for AlexNet's 4096-dimensional fc7. Last, a confusion matrix on
test images says which classes it mixes up.
"""),
    code(SETUP),
    code(DATA_SETUP),
    code(LOAD_SUBSET),
    md("""
## Train the Figure-1 network briefly

The paper's conditions, as in notebook 4: raw pixels minus the mean image,
cuda-convnet's initialization (conv1 starts at N(0, 1e-4), nearly zero, so
whatever its kernels show was learned), momentum SGD at 0.003, batch 128.
The `Trainer` writes checkpoints, metrics and `curves.png`
(`numpy_alexnet.viz.training_curves`) into the output folder, validating on
1,000 of the test images after each epoch.
"""),
    code("""
from numpy_alexnet import cifar_fig1, MomentumSGD
from numpy_alexnet.training import Trainer, FixedSchedule, load_checkpoint
from IPython.display import Image, display

stats = ds.stats()
to_input = EvalTransform(stats.mean_image, crop_size=None, mode="full")
net = cifar_fig1("relu", seed=0)
W_init = net["conv1"].params["W"].copy()
opt = MomentumSGD(net, lr=0.003, momentum=0.9, weight_decay=0.0)
train_batches = BatchIterator(ds.train.images, ds.train.labels, 128, seed=0, transform=to_input)
test_batches = lambda: BatchIterator(ds.test.images, ds.test.labels, 250, shuffle=False, transform=to_input)
# Validation after each epoch on every third test image (1,000), to keep the run short.
val_batches = lambda: BatchIterator(ds.test.images[::3], ds.test.labels[::3], 250, shuffle=False, transform=to_input)
run_dir = OUT / "fig1_relu"
trainer = Trainer(net, opt, train_batches, val_batches=val_batches, schedule=FixedSchedule(),
                  out_dir=run_dir, progress=False, quiet=True, config={"model": "cifar_fig1_relu"})
t = time.perf_counter()
history = trainer.fit(4)
for row in history:
    print(f"epoch {row['epoch']}: training error {row['train_error']:.3f}, top-1 error on 1,000 test images {row['val_top1']:.3f}")
print(f"trained in {time.perf_counter() - t:.0f} s; wrote", sorted(p.name for p in run_dir.iterdir()))
display(Image(filename=str(run_dir / "curves.png")))
"""),
    md("""
The checkpoint holds everything: a fresh network loaded from it computes
exactly the same scores.
"""),
    code("""
fresh = cifar_fig1("relu", seed=123)                    # different random weights...
load_checkpoint(run_dir / "checkpoints" / "latest.npz", fresh)
x = to_input(ds.test.images[:16])
same = np.array_equal(fresh.forward(x, train=False), net.forward(x, train=False))
print("scores identical after loading the checkpoint:", same)
assert same
"""),
    md("""
## Figure 3: the first layer's kernels

`numpy_alexnet.viz.kernel_grid` draws each kernel of conv1 as an RGB tile,
scaled to its own range (as the paper's figure does). The Figure-1 network
has 32 kernels of 5x5x3, one tower.
"""),
    code("""
from numpy_alexnet.viz import kernel_grid

W = net["conv1"].params["W"]                             # (32, 3, 5, 5)
fig = kernel_grid(W, OUT / "fig3_cifar_conv1.png", towers=1,
                  title="Figure-1 net, conv1 after 4 epochs on 3,000 CIFAR-10 images")
display(Image(filename=str(OUT / "fig3_cifar_conv1.png")))
"""),
    md("""
Two numbers about these kernels:

* **How far they moved from their start.** conv1 began at N(0, 1e-4); the
  kernels now are many times larger, so the picture shows what was learned,
  not the initial noise.
* **Colour or luminance?** For each kernel, the share of its energy in the
  part common to R, G and B (the grey part). A random kernel has about 1/3;
  a kernel that responds to brightness edges regardless of colour has nearly 1.
  The paper's first tower learned mostly such kernels. **Expected** here: a
  median near 0.6, already well above 1/3, with a few kernels still colour blobs.
"""),
    code("""
growth = np.linalg.norm(W) / np.linalg.norm(W_init)
grey = W.mean(axis=1, keepdims=True)                      # (32, 1, 5, 5): the part common to R, G, B
grey_share = 3 * (grey ** 2).sum(axis=(1, 2, 3)) / (W ** 2).sum(axis=(1, 2, 3))
print(f"||conv1|| grew {growth:.0f}x from its initialization")
print(f"grey share per kernel: median {np.median(grey_share):.2f}, "
      f"{int((grey_share > 0.8).sum())} of 32 above 0.8 (random kernels: about 0.33)")
assert growth > 10 and np.median(grey_share) > 0.4
"""),
    md("""
AlexNet's conv1 has 96 kernels of 11x11x3, 48 in each tower. Here is that
layout from a **freshly initialized, untrained** `alexnet()`: the top row is
tower 1 (the paper's GPU 1), the bottom row tower 2. Untrained, every tile
is N(0, 0.01) noise; the paper's Figure 3 shows the same grid after 90 epochs
on ImageNet.
"""),
    code("""
from numpy_alexnet import alexnet

W_alex = alexnet()["conv1"].params["W"]                  # (96, 3, 11, 11), untrained
fig = kernel_grid(W_alex, OUT / "fig3_alexnet_conv1_untrained.png", towers=2,
                  title="AlexNet conv1, UNTRAINED (random N(0, 0.01)): the layout of Figure 3")
display(Image(filename=str(OUT / "fig3_alexnet_conv1_untrained.png")))
ax = fig.axes[0]
print("rows:", [t.get_text() for t in ax.get_yticklabels()], "| title:", ax.get_title())
assert W_alex.shape == (96, 3, 11, 11)
assert [t.get_text() for t in ax.get_yticklabels()] == ["tower 1", "tower 2"] and ax.get_title()
"""),
    md("""
## Figure 4: nearest training images in feature space

The feature vector of an image is the network's last hidden layer: run the
layers in test mode up to `flatten` (576 numbers for this network, 4096 at
fc7 for AlexNet). For each query (a test image), the training images with the
smallest Euclidean distance $\\lVert f(q) - f(t)\\rVert$ are its neighbours.
Distances for all pairs at once:
$\\lVert a - b\\rVert^2 = \\lVert a\\rVert^2 + \\lVert b\\rVert^2 - 2\\,a\\cdot b$.
"""),
    code("""
def features(images, upto="flatten", batch=500):
    \"\"\"The activations of layer `upto`, flattened, for uint8 images, in test mode.\"\"\"
    out = []
    for i in range(0, len(images), batch):
        h = to_input(images[i:i + batch])
        for layer in net:
            h = layer.forward(h, train=False)
            if layer.name == upto:
                break
        out.append(h.reshape(len(h), -1))
    return np.concatenate(out)

def sq_distances(a, b):
    \"\"\"Squared Euclidean distances (len(a), len(b)), in float64.\"\"\"
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T, 0)

t = time.perf_counter()
f_train, f_test = features(ds.train.images), features(ds.test.images)
print(f"features: train {f_train.shape}, test {f_test.shape} ({time.perf_counter() - t:.1f} s)")
d = sq_distances(f_test, f_train)                        # (3000 test, 3000 train)
direct = np.array([[np.sum((f_test[i].astype(np.float64) - f_train[j]) ** 2) for j in range(5)] for i in range(5)])
err = np.abs(d[:5, :5] - direct).max() / direct.max()
print(f"distance formula vs direct sum: relative difference {err:.1e}")
assert f_train.shape[1] == 576 and err < 1e-9
"""),
    code("""
from numpy_alexnet.viz import neighbour_grid

classes = ds.classes
queries = [int(np.flatnonzero(ds.test.labels == c)[0]) for c in range(0, 10, 2)]   # one of every other class
nearest = np.argsort(d[queries], axis=1)[:, :6]                                   # (5, 6) training indexes
fig = neighbour_grid(ds.test.images[queries], ds.train.images[nearest], OUT / "fig4_neighbours.png",
                     title="Nearest training images by Euclidean distance of 576-d pool3 features",
                     query_labels=[classes[ds.test.labels[q]] for q in queries],
                     neighbour_labels=[[classes[ds.train.labels[j]] for j in row] for row in nearest])
display(Image(filename=str(OUT / "fig4_neighbours.png")))
"""),
    md("""
**Check.** If the features carry class information, a test image's nearest
training image should often share its class: the 1-nearest-neighbour
accuracy. **Expected:** well above the 10% of chance (about 0.28 here), and a
little above the same search on raw pixels (about 0.26): a network trained
for a minute is a weak feature extractor. AlexNet's fc7, trained for a week,
is what makes Figure 4 striking.
"""),
    code("""
acc_feat = float(np.mean(ds.train.labels[d.argmin(axis=1)] == ds.test.labels))
px_train = ds.train.images.reshape(len(ds.train), -1).astype(np.float32) - stats.mean_image.reshape(1, -1)
px_test = ds.test.images.reshape(len(ds.test), -1).astype(np.float32) - stats.mean_image.reshape(1, -1)
acc_px = float(np.mean(ds.train.labels[sq_distances(px_test, px_train).argmin(axis=1)] == ds.test.labels))
print(f"1-nearest-neighbour accuracy on {len(ds.test)} test images: "
      f"pool3 features {acc_feat:.3f}, raw pixels {acc_px:.3f}, chance 0.100")
assert acc_feat > 0.2
"""),
    md("""
## Which classes does it confuse?

Row $i$, column $j$ of the confusion matrix counts the test images of class
$i$ that the network scored highest as class $j$; the diagonal holds the
correct answers. Drawn by `numpy_alexnet.viz.confusion_matrix_plot`, each row
normalized to sum to 1.
"""),
    code("""
from numpy_alexnet.viz import confusion_matrix_plot
from numpy_alexnet.data import topk_error
from numpy_alexnet.training import evaluate

scores = np.concatenate([net.forward(x, train=False) for x, _ in test_batches()])
pred = scores.argmax(axis=1)
cm = np.zeros((10, 10), dtype=np.int64)
np.add.at(cm, (ds.test.labels, pred), 1)
fig = confusion_matrix_plot(cm, classes, OUT / "confusion.png", normalize=True,
                            title=f"Figure-1 net after 4 epochs: {len(ds.test):,} CIFAR-10 test images")
display(Image(filename=str(OUT / "confusion.png")))
off = cm - np.diag(np.diag(cm))
i, j = np.unravel_index(off.argmax(), off.shape)
print(f"most frequent mistake: {classes[i]} taken for {classes[j]} ({off[i, j]} times)")
"""),
    md("""
**Check.** The matrix, the library's top-1 error (`numpy_alexnet.data.topk_error`)
and the trainer's `evaluate` must tell the same story: accuracy = trace / total
= 1 - top-1 error. **Expected:** about 0.32 accuracy after 4 epochs on
3,000 images (chance: 0.10); frogs are over-predicted at this stage.
"""),
    code("""
acc = np.trace(cm) / cm.sum()
top1 = topk_error(scores, ds.test.labels, k=1)
top1_eval = evaluate(net, test_batches())["top1"]
print(f"accuracy from the matrix {acc:.4f}; 1 - topk_error {1 - top1:.4f}; 1 - evaluate()['top1'] {1 - top1_eval:.4f}")
assert cm.sum() == len(ds.test)
assert abs(acc - (1 - top1)) < 1e-12 and abs(top1 - top1_eval) < 1e-12
assert acc > 0.2
""" + FOOTER),
]


# --------------------------------------------------------------------------- #
NOTEBOOKS = {
    "01_layers.ipynb": (NB01, False),
    "02_lrn_and_pooling.ipynb": (NB02, False),
    "03_alexnet_tour.ipynb": (NB03, False),
    "04_training_relu_vs_tanh.ipynb": (NB04, True),
    "05_what_it_learned.ipynb": (NB05, True),
}


def make(cells, needs_data: bool):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # Read by tests/test_notebooks.py: a notebook that needs the CIFAR-10 archive is
    # skipped (not failed) where the archive is missing.
    nb.metadata["numpy_alexnet"] = {"needs_data": needs_data}
    for i, cell in enumerate(nb.cells):     # stable ids: no diff noise between regenerations
        cell["id"] = f"cell-{i:02d}"
    return nb


def render(name: str) -> str:
    cells, needs_data = NOTEBOOKS[name]
    return nbformat.writes(make(cells, needs_data)) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        path = HERE / name
        text = render(name)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print("wrote", path)
    if stale:
        print("out of date (run python notebooks/make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
