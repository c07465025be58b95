"""Summarize the GPU calibration that chose the quick Figure-1 form (docs/replication.md).

The calibration ran ``relu-vs-tanh --train-to-cap`` (3 seeds, the committed
rates, CuPy backend) on subsets of 2,500, 5,000 and 10,000 images and on all
50,000, keeping every run's ``steps.csv`` under one ``--work`` folder per set.
This reads those folders and writes, per set and target, the epochs each seed
took and the tanh/ReLU ratios, measured as the study measures them: per epoch
of the subset, and on all 50,000 images also over windows of 5,000 images
(``running_error.window_errors``).  Only the summary is committed, not the steps.

    python benchmarks/quick_calibration.py runs/calib --out docs/results/relu_vs_tanh_quick_calibration.json
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from numpy_alexnet.experiments.running_error import epochs_at_target, window_epochs, window_errors

SETS = {  # folder: (regime, training images, targets)
    "w_s2500": ("cuda-convnet", 2500, (0.45, 0.40)),
    "w_s5000": ("cuda-convnet", 5000, (0.45, 0.40)),
    "w_s10000": ("cuda-convnet", 10000, (0.45, 0.40)),
    "w_u5000": ("unit", 5000, (0.45, 0.40)),
    "w_s50000": ("cuda-convnet", 50000, (0.45, 0.43)),
}


def _runs(folder: Path):
    for spec_path in sorted(folder.glob("run-*.json")):
        run = json.loads(spec_path.read_text())
        steps = spec_path.with_suffix("") / "steps.csv"
        with open(steps, newline="") as f:
            errs = [float(r["error"]) for r in csv.DictReader(f)]
        yield run["spec"], run["train_error"], errs


def _pairs(per_act: dict, scale: float) -> dict:
    """Epochs (in passes over all 50,000 images when ``scale`` converts them) and ratios."""
    relu, tanh = per_act["relu"], per_act["tanh"]
    ratios = [t / r for r, t in zip(relu, tanh) if r and t]
    out = {"relu_epochs": relu, "tanh_epochs": tanh,
           "ratios": [round(x, 3) for x in ratios]}
    if ratios and len(ratios) == len(relu):
        out.update(ratio_mean=round(float(np.mean(ratios)), 3),
                   ratio_min=round(float(np.min(ratios)), 3),
                   images_per_pair_full_epochs=round(float(np.mean(relu) + np.mean(tanh)) * scale, 2))
    return out


def summarize(root: Path) -> dict:
    out = {"what": "GPU calibration of the quick form of relu-vs-tanh: 3 seeds, the committed "
                   "rates (cuda-convnet: ReLU 0.003, tanh 0.01; unit: 0.03), CuPy on one H200, "
                   "trained to a cap; epochs to a running-training-error target",
           "sets": {}}
    for name, (regime, n, targets) in SETS.items():
        folder = root / name
        if not folder.is_dir():
            continue
        runs = list(_runs(folder))
        entry = {"regime": regime, "training_images": n, "seeds": len({s["seed"] for s, _, _ in runs}),
                 "cap_epochs_of_the_set": runs[0][0]["epochs"], "per_epoch": {}}
        for t in targets:
            per_act = {"relu": [], "tanh": []}
            for spec, errs, _ in runs:
                per_act[spec["activation"]].append(
                    epochs_at_target(list(range(1, len(errs) + 1)), errs, t))
            # cost in passes over 50,000 images: a subset's epoch is n images
            entry["per_epoch"][f"{t:.2f}"] = _pairs(per_act, n / 50000)
        if n == 50000:
            W = 5000 // 128
            entry["window"] = {"images": 5000, "steps": W}
            for t in targets:
                per_act = {"relu": [], "tanh": []}
                for spec, _, steps in runs:
                    werr = window_errors(steps, W)
                    per_act[spec["activation"]].append(
                        epochs_at_target(window_epochs(len(werr), 5000, n), werr, t))
                entry["window"][f"{t:.2f}"] = _pairs(per_act, 1.0)
        out["sets"][name] = entry
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="the folder holding w_s2500, w_s5000, ... (--work folders)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.write_text(json.dumps(summarize(args.root), indent=1) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
