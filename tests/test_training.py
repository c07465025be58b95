"""The trainer, checkpoints, resume, the non-finite guard, the CLI and the plots.

Small synthetic data throughout (a tiny net on 8x8 images in-process; a tiny
32x32 image folder for the command line), so the file runs in well under two
minutes on two cores.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from numpy_alexnet import MomentumSGD
from numpy_alexnet.cli import main
from numpy_alexnet.data import BatchIterator
from numpy_alexnet.models import build
from numpy_alexnet.training import (FixedSchedule, NonFiniteLossError, PaperSchedule, Trainer,
                                    read_checkpoint)
from numpy_alexnet.experiments.relu_vs_tanh import epochs_to_target, summarize

# A tiny net with a dropout layer, so the generator states are part of resuming.
TINY = [
    ("conv1", "conv", dict(in_channels=3, out_channels=4, kernel_size=3, padding=1, weight_std=0.1)),
    ("relu1", "relu", {}),
    ("pool1", "maxpool", dict(kernel_size=3, stride=2)),
    ("flatten", "flatten", {}),
    ("fc1", "linear", dict(in_features=4 * 3 * 3, out_features=16, weight_std=0.1, bias=0.1)),
    ("relu2", "relu", {}),
    ("drop1", "dropout", dict(rate=0.5)),
    ("fc2", "linear", dict(in_features=16, out_features=5, weight_std=0.1)),
]


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, size=n)
    x = rng.integers(0, 256, size=(n, 3, 8, 8)).astype(np.uint8)
    x[:, 0] = np.clip(x[:, 0].astype(int) // 2 + 25 * y[:, None, None], 0, 255)   # learnable
    return x, y


def _scale(x, rng):
    return (x.astype(np.float32) - 128.0) / 64.0


def _trainer(out=None, lr=0.05, checkpoint_every=0, transform=_scale, prefetch=True, **kw):
    x, y = _data()
    net = build(TINY, (3, 8, 8), seed=1)
    opt = MomentumSGD(net, lr=lr, momentum=0.9, weight_decay=5e-4)
    it = BatchIterator(x, y, 16, seed=3, transform=transform, prefetch=prefetch)
    val = lambda: BatchIterator(x[:40], y[:40], 20, shuffle=False, transform=_scale)  # noqa: E731
    return Trainer(net, opt, it, val_batches=val, schedule=PaperSchedule(), out_dir=out,
                   checkpoint_every=checkpoint_every, progress=False, quiet=True, plot=False, **kw)


def _weights(tr):
    return tr.net.state_dict(), {k: v.copy() for k, v in tr.optimizer.velocity.items()}


def _untimed(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]


def _assert_same(a, b):
    (wa, va), (wb, vb) = a, b
    assert wa.keys() == wb.keys() and va.keys() == vb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k
    for k in va:
        assert np.array_equal(va[k], vb[k]), k


# --------------------------------------------------------------------------- #
# Resume: bit-identical
# --------------------------------------------------------------------------- #
def test_two_epochs_equal_one_save_resume_one(tmp_path):
    straight = _trainer(tmp_path / "a")
    straight.fit(2)

    first = _trainer(tmp_path / "b")
    first.fit(1)
    assert (tmp_path / "b" / "checkpoints" / "latest.npz").exists()
    second = _trainer(tmp_path / "b")                 # a fresh process would build the same
    second.resume()
    assert (second.epoch, second.batch) == (1, 0)
    second.fit(2)

    _assert_same(_weights(straight), _weights(second))
    assert _untimed(straight.history) == _untimed(second.history)
    assert straight.optimizer.lr == second.optimizer.lr
    assert straight.net["drop1"].rng.bit_generator.state == second.net["drop1"].rng.bit_generator.state


def test_resume_mid_epoch_is_bit_identical(tmp_path):
    straight = _trainer(tmp_path / "a")
    straight.fit(2)
    part = _trainer(tmp_path / "b", checkpoint_every=3, max_steps=11)   # stops inside epoch 2
    part.fit(2)
    ck = read_checkpoint(tmp_path / "b" / "checkpoints" / "latest.npz")["meta"]
    assert (ck["epoch"], ck["batch"], ck["step"]) == (1, 3, 11)        # 8 batches an epoch
    rest = _trainer(tmp_path / "b", checkpoint_every=3)
    rest.resume()
    rest.fit(2)
    _assert_same(_weights(straight), _weights(rest))
    assert _untimed(straight.history) == _untimed(rest.history)


def test_metrics_and_checkpoints_written(tmp_path):
    tr = _trainer(tmp_path)
    tr.plot = True
    tr.fit(2)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,train_loss,train_error,val_loss,val_top1,val_top5")
    assert len(rows) == 3
    js = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["epoch"] for r in js["epochs"]] == [1, 2]
    assert 0.0 <= js["epochs"][1]["val_top1"] <= 1.0
    assert (tmp_path / "curves.png").stat().st_size > 1000
    for name in ("latest", "best"):
        ck = read_checkpoint(tmp_path / "checkpoints" / f"{name}.npz")
        assert set(ck["params"]) == {"conv1.W", "conv1.b", "fc1.W", "fc1.b", "fc2.W", "fc2.b"}
        assert set(ck["velocity"]) == set(ck["params"])
        assert "drop1" in ck["meta"]["rng"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


# --------------------------------------------------------------------------- #
# Schedules
# --------------------------------------------------------------------------- #
def test_paper_schedule_divides_three_times_at_most():
    s = PaperSchedule(patience=1)
    lr = 0.01
    lrs = []
    for epoch, err in enumerate([0.9, 0.8, 0.8, 0.7, 0.75, 0.76, 0.77, 0.78, 0.79], start=1):
        lr = s.step(epoch, lr, err)
        lrs.append(lr)
    assert lrs[:2] == [0.01, 0.01]
    assert lrs[2] == pytest.approx(1e-3)               # no improvement at epoch 3
    assert lrs[3] == pytest.approx(1e-3)               # improved
    assert lrs[-1] == pytest.approx(1e-5)              # three divisions, then no more
    assert s.reductions == 3
    t = PaperSchedule()
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict()
    assert FixedSchedule(milestones=[2]).step(2, 0.1, None) == pytest.approx(0.01)


# --------------------------------------------------------------------------- #
# The non-finite guard
# --------------------------------------------------------------------------- #
@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # overflow is the point here
def test_nonfinite_guard_huge_learning_rate(tmp_path):
    tr = _trainer(tmp_path, lr=0.05)
    tr.fit(1)
    latest = tmp_path / "checkpoints" / "latest.npz"
    before = latest.read_bytes()
    tr.optimizer.lr = 1e30
    with pytest.raises(NonFiniteLossError, match=r"(non-finite|diverging) .* step \d+"):
        tr.fit(3)
    assert latest.read_bytes() == before


def test_nonfinite_guard_injected_nan_names_step(tmp_path):
    calls = {"n": 0}

    def poisoned(x, rng):
        out = _scale(x, rng)
        calls["n"] += 1
        if calls["n"] == 5:
            out[0, 0, 0, 0] = np.nan
        return out

    tr = _trainer(tmp_path, transform=poisoned, prefetch=False, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError) as info:
        tr.fit(1)
    assert info.value.step == 5 and "step 5 (epoch 1, batch 5)" in str(info.value)
    ck = read_checkpoint(tmp_path / "checkpoints" / "latest.npz")["meta"]
    assert ck["step"] == 4                               # the last good one


# --------------------------------------------------------------------------- #
# The command line on a tiny image folder
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("tiny") / "tiny"
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for c in range(10):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
                img[..., c % 3] = 20 * c
                Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _train_args(folder, out, *extra):
    return ["train", "--model", "cifar_fig1_relu", "--data", str(folder), "--batch-size", "8",
            "--lr", "0.001", "--weight-decay", "0", "--schedule", "fixed", "--out", str(out),
            "--quiet", *extra]


def test_cli_train_writes_everything_and_eval(folder, cache, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_args(folder, out, "--epochs", "1")) == 0
    for f in ("metrics.csv", "metrics.json", "steps.csv", "curves.png",
              "checkpoints/latest.npz", "checkpoints/best.npz"):
        assert (out / f).exists(), f
    err = capsys.readouterr().err
    # The start says the backend --backend auto chose, and where the whole configuration went.
    assert "--backend auto: Numba" in err and f"{out / 'config.json'}" in err
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["backend"] in ("numba", "numpy") and config["versions"]["numpy"]
    assert main(["eval", str(out / "checkpoints" / "best.npz"), "--data", str(folder),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["images"] == 20 and 0 <= res["top1"] <= 1 and 0 <= res["top5"] <= 1


def test_cli_resume_refuses_other_settings(folder, cache, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_args(folder, out, "--epochs", "1")) == 0
    rc = main(_train_args(folder, out, "--epochs", "2", "--resume", "--seed", "5"))
    assert rc == 2 and "seed" in capsys.readouterr().err


def test_cli_nonfinite_exit_code_and_checkpoint_untouched(folder, cache, tmp_path, capsys,
                                                          monkeypatch):
    out = tmp_path / "run"
    assert main(_train_args(folder, out, "--epochs", "1", "--checkpoint-every", "1")) == 0
    latest, best = out / "checkpoints" / "latest.npz", out / "checkpoints" / "best.npz"
    before = latest.read_bytes(), best.read_bytes()
    capsys.readouterr()

    from numpy_alexnet.net import Sequential
    real, calls = Sequential.forward, {"n": 0}

    def forward(self, x, train=True):                # the 3rd training batch turns to NaN
        out_ = real(self, x, train)
        if train:
            calls["n"] += 1
            if calls["n"] == 3:
                out_ = out_ * np.float32(np.nan)
        return out_

    monkeypatch.setattr(Sequential, "forward", forward)
    rc = main(_train_args(folder, out, "--epochs", "2", "--resume", "--checkpoint-every", "1"))
    err = capsys.readouterr().err
    assert rc == 3
    assert "non-finite loss (nan) at step 11 (epoch 2, batch 3)" in err
    assert "untouched" in err
    # The checkpoints after steps 9 and 10 were written; none after the bad step 11.
    assert read_checkpoint(latest)["meta"]["step"] == 10
    assert best.read_bytes() == before[1]

    # And when the very first step of a resumed run fails, latest is byte-identical.
    after = latest.read_bytes()
    calls["n"] = 2
    rc = main(_train_args(folder, out, "--epochs", "2", "--resume", "--checkpoint-every", "1"))
    assert rc == 3 and "step 11" in capsys.readouterr().err
    assert latest.read_bytes() == after


def test_sigkill_mid_epoch_then_resume(folder, cache, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, NUMPY_ALEXNET_CACHE=str(cache), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "numpy_alexnet",
           *_train_args(folder, out, "--epochs", "40", "--checkpoint-every", "3")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = out / "checkpoints" / "latest.npz"
    deadline = time.time() + 90
    try:
        # Wait for a mid-epoch checkpoint of the second epoch or later, then kill -9.
        while time.time() < deadline and proc.poll() is None:
            if latest.exists():
                try:
                    m = read_checkpoint(latest)["meta"]
                except Exception:                      # being replaced right now: try again
                    m = None
                if m and m["step"] >= 9 and m["batch"] > 0:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)                                # land somewhere inside a later step
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    ck = read_checkpoint(latest)                       # loads: nothing torn
    m = ck["meta"]
    assert m["step"] >= 9 and all(np.isfinite(v).all() for v in ck["params"].values())
    end = m["epoch"] + 2
    assert main(_train_args(folder, out, "--epochs", str(end), "--resume")) == 0
    done = read_checkpoint(latest)["meta"]
    assert (done["epoch"], done["batch"]) == (end, 0)
    rows = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == list(range(1, end + 1))


def _study_args(folder, out, work, cap):
    return ["relu-vs-tanh", "--quick", "--subset", "60", "--regimes", "unit", "--train-to-cap",
            "--batch-size", "8", "--cap", str(cap), "--data", str(folder), "--out", str(out),
            "--work", str(work), "--quiet"]


def test_study_run_cut_off_midway_goes_on_from_its_checkpoint(folder, cache, tmp_path, capsys):
    """A study re-run after a stop continues each unfinished run from its last checkpoint."""
    straight = tmp_path / "straight"
    assert main(_study_args(folder, straight, straight / "work", 2)) == 0
    # A study stopped after one epoch of every run: its checkpoints, and no finished runs.
    cut = tmp_path / "cut"
    assert main(_study_args(folder, cut, cut / "one_epoch", 1)) == 0
    for ck in (cut / "one_epoch").glob("*/checkpoints/latest.npz"):
        run = ck.parent.parent
        key = run.name.replace("-ep1-", "-ep2-")
        (cut / "work" / key / "checkpoints").mkdir(parents=True)
        ck.replace(cut / "work" / key / "checkpoints" / "latest.npz")
        (run / "metrics.json").replace(cut / "work" / key / "metrics.json")
    # --report-only trains nothing and reports the runs as far as they got.
    assert main(_study_args(folder, cut, cut / "work", 2) + ["--report-only"]) == 0
    part = json.loads((cut / "relu_vs_tanh_quick.json").read_text())
    assert part["complete"] is False
    assert [(r["in_progress"], r["epochs_run"]) for r in part["regimes"]["unit"]["runs"]] == \
        [(True, 1), (True, 1)]
    assert not list((cut / "work").glob("*.json"))            # no run was finished by it
    assert main(_study_args(folder, cut, cut / "work", 2)) == 0
    assert "resumed at epoch 2, batch 0" in capsys.readouterr().err
    a = json.loads((straight / "relu_vs_tanh_quick.json").read_text())["regimes"]["unit"]["runs"]
    b = json.loads((cut / "relu_vs_tanh_quick.json").read_text())["regimes"]["unit"]["runs"]
    assert [r["activation"] for r in b] == ["relu", "tanh"]
    assert json.loads((cut / "relu_vs_tanh_quick.json").read_text())["complete"] is True
    for ra, rb in zip(a, b):
        assert rb["epochs_run"] == 2
        assert ra["train_error"] == rb["train_error"] and ra["train_loss"] == rb["train_loss"]


def test_study_refuses_to_go_on_from_a_run_made_with_other_settings(folder, cache, tmp_path,
                                                                    capsys):
    """A run in progress under --work whose spec differs in a setting its key does not name
    (--momentum) is refused with both values named, and its checkpoint is left as it was."""
    out = tmp_path / "out"
    assert main(_study_args(folder, out, out / "one_epoch", 1)) == 0
    moved = []
    for ck in (out / "one_epoch").glob("*/checkpoints/latest.npz"):
        key = ck.parent.parent.name.replace("-ep1-", "-ep2-")
        (out / "work" / key / "checkpoints").mkdir(parents=True)
        moved.append(ck.replace(out / "work" / key / "checkpoints" / "latest.npz"))
    before = {p: p.read_bytes() for p in moved}
    capsys.readouterr()
    assert main(_study_args(folder, out, out / "work", 2) + ["--momentum", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "holds a run in progress made with other settings (momentum: 0.9 there, 0.5 now)" \
        in err, err
    assert {p: p.read_bytes() for p in moved} == before


def test_study_jobs_run_in_workers_and_give_the_same_report(folder, cache, tmp_path):
    """--jobs 2: the sweep and the runs train in worker processes, with the same numbers.

    Both studies run as fresh processes, as from the command line: the float32
    bits depend on the BLAS thread count, which the Numba backend sets to one
    for the whole process, so a study run inside this test process (after
    Numba tests) and one in fresh workers would differ in the last bits.
    """
    env = dict(os.environ, NUMPY_ALEXNET_CACHE=str(cache), PYTHONUNBUFFERED="1")
    sweep = ["--sweep", "--sweep-epochs", "1", "--lr-grid", "0.01,0.03"]
    one, two = tmp_path / "one", tmp_path / "two"
    for out, jobs in ((one, []), (two, ["--jobs", "2"])):
        res = subprocess.run([sys.executable, "-m", "numpy_alexnet",
                              *_study_args(folder, out, out / "work", 2), *sweep, *jobs],
                             env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
    assert "sweeps: 4 run(s), 2 at a time" in res.stderr
    assert "runs at the chosen rates: 2 run(s)" in res.stderr
    a = json.loads((one / "relu_vs_tanh_quick.json").read_text())["regimes"]["unit"]
    b = json.loads((two / "relu_vs_tanh_quick.json").read_text())["regimes"]["unit"]
    assert b["chosen_lr"] == a["chosen_lr"]
    assert [x["train_error"] for x in b["sweep"]["relu"] + b["sweep"]["tanh"]] == \
        [x["train_error"] for x in a["sweep"]["relu"] + a["sweep"]["tanh"]]
    assert [r["train_error"] for r in b["runs"]] == [r["train_error"] for r in a["runs"]]
    assert [r["train_loss"] for r in b["runs"]] == [r["train_loss"] for r in a["runs"]]


# --------------------------------------------------------------------------- #
# The study's arithmetic and the plots
# --------------------------------------------------------------------------- #
def test_epochs_to_target_and_ratios():
    assert epochs_to_target([0.9, 0.5, 0.25, 0.2], 0.25) == 3
    assert epochs_to_target([0.9, 0.5], 0.25) is None
    assert summarize([6], [None], cap=40, censored_at=[12])["ratios"] == [2.0]   # still running
    s = summarize([6, 5, 6], [36, 30, None], cap=40)
    assert s["ratios"] == [6.0, 6.0, 40 / 6]
    assert s["lower_bound"] is True
    assert s["ratio_min"] == 6.0 and s["ratio_max"] == pytest.approx(40 / 6)
    assert summarize([None], [10], cap=40)["undefined_pairs"] is True


def test_viz_figures(tmp_path):
    from numpy_alexnet import viz
    rng = np.random.default_rng(0)
    viz.kernel_grid(rng.standard_normal((96, 3, 11, 11)), tmp_path / "k.png")
    viz.neighbour_grid(rng.integers(0, 256, (3, 3, 16, 16)).astype(np.uint8),
                       rng.integers(0, 256, (3, 6, 3, 16, 16)).astype(np.uint8), tmp_path / "n.png")
    viz.confusion_matrix_plot(rng.integers(0, 50, (10, 10)), [f"c{i}" for i in range(10)],
                              tmp_path / "c.png")
    viz.relu_vs_tanh_plot([{"title": "t", "runs": [
        {"activation": "relu", "train_error": [0.8, 0.5, 0.2]},
        {"activation": "tanh", "train_error": [0.85, 0.7, 0.5]}]}], tmp_path / "f.png")
    for name in ("k", "n", "c", "f"):
        assert 1000 < (tmp_path / f"{name}.png").stat().st_size < 300_000
    with pytest.raises(ValueError, match="kernels"):
        viz.kernel_grid(np.zeros((4, 1, 3, 3)), tmp_path / "bad.png")


def test_atomic_writes_give_files_the_usual_permissions(tmp_path):
    # mkstemp makes its file 0600; a checkpoint or report must be as readable as open() makes it.
    from numpy_alexnet.files import atomic_write_text
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.json", "{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "report.json").read_text() == "{}"
