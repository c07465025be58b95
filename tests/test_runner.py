"""The runner serves any study: a third one, written here in a page, is kept, reused and reported.

``Momentum`` compares the Figure-1 net trained with momentum 0.9 and without,
a seed each, on a tiny stand-in for CIFAR-10: only its runs, its analysis and
its table are its own; the run cache, the report and its refusals are the
runner's.
"""
import argparse
import json

import pytest
from test_ablate import CIFAR10, _folder

from numpy_alexnet.experiments.runner import Study, add_arguments, run
from numpy_alexnet.models import build_model
from numpy_alexnet.training.recipe import assemble, prepare_data


class Momentum(Study):
    name, stem, title = "momentum", "momentum", "momentum 0.9 against none (section 5)"
    forms = {form: dict(epochs=2) for form in ("full", "reduced", "quick")}
    form_flags = ("epochs",)
    same_study = ("epochs",)

    @staticmethod
    def add_arguments(p):
        p.add_argument("--epochs", type=int, default=None)

    @staticmethod
    def own_settings(args, f):
        return f

    def specs(self):
        return [dict(momentum=m, seed=0, epochs=self.s["epochs"], data=self.s["data"])
                for m in (0.0, 0.9)]

    def key(self, spec):
        return f"momentum{spec['momentum']:g}-ep{spec['epochs']}"

    def describe(self, spec):
        return f"momentum {spec['momentum']:g}"

    def prepared(self, spec):
        if not self.data:
            self.data["all"] = self.cifar10(prepare_data(self.args.data, 32, progress=False))
        return self.data["all"]

    def trainer(self, spec, run_dir, d):
        net, device = self.place(build_model("cifar_fig1_relu", 10, spec["seed"]))
        return assemble(net, d, batch_size=self.s["batch_size"], seed=spec["seed"], lr=0.01,
                        momentum=spec["momentum"], weight_decay=0.0, backend=self.s["backend"],
                        device=device, **self.run_options(spec, run_dir))

    def outcome(self, res):
        return f"training error {res['train_error'][-1]:.3f}"

    def analyse(self):
        return {"runs": [self.result(spec) for spec in self.specs()]}

    @staticmethod
    def format_table(report):
        return "\n".join(["| momentum | training error |", "|---|---|"]
                         + [f"| {r['spec']['momentum']:g} | {r['train_error'][-1]:.3f} |"
                            for r in report["runs"]])

    @staticmethod
    def figure(report, path):
        path.write_bytes(b"\x89PNG")


def _args(data, out, *extra):
    p = argparse.ArgumentParser()
    add_arguments(Momentum, p)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--devices", default=None)
    argv = ["--quick", "--data", str(data), "--out", str(out), "--batch-size", "10", "--quiet",
            *extra]
    args = p.parse_args(argv)
    args.argv = ["momentum", *argv]
    return args


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "cache"))


def test_a_third_study_runs_is_kept_reused_and_reported(tmp_path, capsys):
    data = _folder(tmp_path / "cifar", CIFAR10, splits=(("train", 2),))
    out = tmp_path / "out"
    report = run(Momentum, _args(data, out))
    assert report["complete"] is True and len(report["runs"]) == 2
    assert [r["epochs_run"] for r in report["runs"]] == [2, 2]
    kept = json.loads((out / "momentum_quick.json").read_text())
    assert kept["table_markdown"].startswith("| momentum | training error |")
    assert sorted(p.name for p in (out / "work").glob("*.json")) == \
        ["momentum0-ep2.json", "momentum0.9-ep2.json"]
    err = capsys.readouterr().err
    assert "run 1 of 2" in err and "run 2 of 2" in err

    again = run(Momentum, _args(data, out))                   # every run reused
    assert capsys.readouterr().err.count("done before") == 2
    assert [r["train_loss"] for r in again["runs"]] == [r["train_loss"] for r in report["runs"]]

    with pytest.raises(ValueError, match="no runs of this study"):   # other settings: none kept
        run(Momentum, _args(data, tmp_path / "elsewhere", "--epochs", "3", "--report-only",
                            "--work", str(out / "work")))
