"""The lab: studies that train many runs to measure the paper's claims.

``runner.py`` runs, keeps, resumes and reports the runs of any study;
``stats.py`` holds the statistics the reports give; each study is a module of
its own, its configurations, analysis and report text:

* ``relu_vs_tanh.py``: Figure 1, epochs to a training error with ReLU and tanh
  (``numpy-alexnet relu-vs-tanh``; its measurement in ``running_error.py``);
* ``ablation.py``: the CIFAR-10 ablations of LRN, overlapping pooling,
  dropout, augmentation and 10-view testing (``numpy-alexnet ablate``).
"""
from functools import partial

from .ablation import Ablation
from .relu_vs_tanh import ReluVsTanh
from .runner import add_arguments, run

# What the command line calls: each study's flags, and the study itself.
relu_vs_tanh_arguments = partial(add_arguments, ReluVsTanh)
ablation_arguments = partial(add_arguments, Ablation)
run_relu_vs_tanh = partial(run, ReluVsTanh)
run_ablation = partial(run, Ablation)
