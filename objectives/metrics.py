"""Metric names and optimisation directions: the only place they are defined."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Metric:
    """A named quantity a trial reports, with the direction that is better."""

    name: str
    mode: str  # "max" or "min"
    description: str

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"metric {self.name}: mode must be 'max' or 'min', got {self.mode!r}")


ACCURACY = Metric("accuracy", "max", "validation accuracy (mean over tasks)")
MACS = Metric("macs_per_sample", "min", "mean multiply-accumulates per sample at inference, as dispatched")
TEST_ACCURACY = Metric("test_accuracy", "max", "held-out test accuracy (mean over tasks); never used for selection")
VAL_LOSS = Metric("val_loss", "min", "validation cross-entropy")
TRAIN_LOSS = Metric("train_loss", "min", "mean training loss of the epoch (task + auxiliary)")
ACTIVE_EXPERTS = Metric("active_experts", "min", "mean experts run per sample at inference")
WEIGHT_SPARSITY = Metric("weight_sparsity", "max", "fraction of gate weights < 1e-5 at inference")
EPOCH = Metric("epoch", "max", "epochs completed (1-based)")
TRAIN_ACTIVE_EXPERTS = Metric("train_active_experts", "min",
                              "mean experts run per sample during the epoch's training steps (DTS decay)")
TRAIN_MACS = Metric("train_macs_per_sample", "min", "mean MACs per sample during the epoch's training steps")
AUC = Metric("auc", "max", "validation ROC AUC (mean over tasks; one-vs-rest for multi-class)")
TEST_AUC = Metric("test_auc", "max", "held-out test ROC AUC (mean over tasks)")
ECE = Metric("ece", "min", "expected calibration error of the exit-gated prediction (15 equal-mass bins)")
FROZEN_IMS = Metric("frozen_ims", "min", "JEI-DNN with freeze_ims: intermediate classifiers frozen so far")
COVERAGE = Metric("conformal_coverage", "max", "split-conformal coverage at alpha=0.05 (target 0.95)")
SET_SIZE = Metric("conformal_set_size", "min", "mean split-conformal set size at alpha=0.05")
TEST_MACS = Metric("test_macs_per_sample", "min", "expected MACs per sample on the test split")
BPC = Metric("val_bpc", "min", "validation bits per character (cross-entropy / ln 2) of a language model")
TEST_BPC = Metric("test_bpc", "min", "held-out test bits per character (plays never trained on)")
BPC_SE = Metric("val_bpc_se", "min", "standard error of val_bpc over its scored windows (a sample of the held-out text)")
MACS_PER_TOKEN = Metric("macs_per_token", "min", "mean multiply-accumulates per token at inference, as dispatched "
                        "(attention over the full context, FFNs or MoE experts, head)")
DROPPED_FRACTION = Metric("dropped_fraction", "min", "share of (token, expert) assignments dropped by the expert "
                          "capacity at inference")
RESUMED_FROM = Metric("resumed_from_epoch", "max", "the epoch a restarted trial continued after (its last "
                      "checkpoint); absent when it never restarted")
EPOCHS_TOTAL = Metric("epochs_total", "max", "the trial's full budget in epochs (epoch < epochs_total = stopped early)")
# measured cost (objectives/cost.py: the protocol and its noise)
LATENCY = Metric("latency_ms_per_sample", "min", "measured inference latency per sample on the trial's device (ms; a "
                 "fixed batch, after warm-up, the median of 7 calls)")
TRAIN_STEP = Metric("train_step_ms", "min", "measured mean wall time of the epoch's training steps (ms)")
PEAK_MEMORY = Metric("peak_memory_mb", "min", "measured peak memory of an inference batch (MiB; CUDA: max allocated; "
                     "CPU: weights plus the peak bytes of the tensors the forward holds at once)")
LATENCY_TOKEN = Metric("latency_ms_per_token", "min", "measured inference latency per token on the trial's device (ms; "
                       "a fixed batch of windows, after warm-up, the median of 7 calls)")
#: the measured times: they differ run to run (everything else a seeded trial reports is reproducible)
TIMINGS = frozenset({LATENCY.name, LATENCY_TOKEN.name, TRAIN_STEP.name})
LOAD_CV = Metric("expert_load_cv", "min", "expert-load imbalance: coefficient of variation of the rows each expert "
                 "receives on the measured batch, averaged over MoE layers (0 = balanced)")

METRICS: dict[str, Metric] = {m.name: m for m in (ACCURACY, MACS, TEST_ACCURACY, VAL_LOSS, TRAIN_LOSS, BPC_SE, FROZEN_IMS,
                                                  ACTIVE_EXPERTS, WEIGHT_SPARSITY, EPOCH, EPOCHS_TOTAL,
                                                  TRAIN_ACTIVE_EXPERTS, TRAIN_MACS, AUC, TEST_AUC, ECE, COVERAGE,
                                                  SET_SIZE, TEST_MACS, BPC, TEST_BPC, MACS_PER_TOKEN,
                                                  DROPPED_FRACTION, RESUMED_FROM, LATENCY, TRAIN_STEP, PEAK_MEMORY,
                                                  LOAD_CV, LATENCY_TOKEN)}

#: what each family of built-in objectives reports (besides its objectives): the names a space
#: file's ``constraints:`` may bound (``Objective.reports``; a test checks each against real trials)
CLASSIFIER_REPORTS = tuple(m.name for m in (ACCURACY, AUC, MACS, VAL_LOSS, TRAIN_LOSS, ACTIVE_EXPERTS, WEIGHT_SPARSITY,
                                            TRAIN_ACTIVE_EXPERTS, TRAIN_MACS, TEST_ACCURACY, TEST_AUC, RESUMED_FROM,
                                            LATENCY, TRAIN_STEP, PEAK_MEMORY, LOAD_CV))
LM_REPORTS = tuple(m.name for m in (VAL_LOSS, BPC, BPC_SE, MACS_PER_TOKEN, ACTIVE_EXPERTS, DROPPED_FRACTION, TRAIN_LOSS,
                                    TRAIN_ACTIVE_EXPERTS, TEST_BPC, RESUMED_FROM, LATENCY_TOKEN, TRAIN_STEP,
                                    PEAK_MEMORY, LOAD_CV))
EXIT_REPORTS = tuple(m.name for m in (ACCURACY, MACS, ECE, COVERAGE, SET_SIZE, VAL_LOSS, TRAIN_LOSS, FROZEN_IMS,
                                      TEST_ACCURACY, TEST_MACS, RESUMED_FROM, LATENCY, TRAIN_STEP,
                                      PEAK_MEMORY)) + ("exit_fraction_*",)

# -- search-level metrics (logged by the search, not reported by trials) ---------------------
PARETO_RANK = Metric("pareto_rank", "min", "a finished trial's non-dominated sorting layer (0 = on the front)")
HYPERVOLUME = Metric("hypervolume", "max", "hypervolume of the front w.r.t. the fixed reference point")
HYPERVOLUME_SHARE = Metric("hypervolume_share", "max", "hypervolume / volume of the box between the reference "
                           "point and the ideal point of the finished trials (in [0, 1])")
FRONT_SIZE = Metric("front_size", "max", "trials on the Pareto front")
FINISHED_TRIALS = Metric("finished_trials", "max", "trials finished at full fidelity")
HV_EPOCHS = Metric("hypervolume_epochs", "max", "epochs the search had trained when the hypervolume of this step was "
                   "logged (the x axis of GPU-hours)")
HV_SECONDS = Metric("hypervolume_seconds", "max", "seconds since the search started (its parent run's start, resumes "
                    "and the time between them included) when the hypervolume of this step was logged")
SEARCH_METRICS: dict[str, Metric] = {m.name: m for m in (PARETO_RANK, HYPERVOLUME, HYPERVOLUME_SHARE, FRONT_SIZE,
                                                         FINISHED_TRIALS, HV_EPOCHS, HV_SECONDS)}

#: per-exit metrics of early-exit objectives: ``exit_fraction_1`` ... ``exit_fraction_L``
EXIT_FRACTION_PREFIX = "exit_fraction_"


def is_reported_metric(key: str) -> bool:
    """Whether a key of a trial's report is a metric worth logging (a name defined here, or a
    member of a per-exit family)."""
    return key in METRICS or key.startswith(EXIT_FRACTION_PREFIX)


#: what an objective calls once per epoch with that epoch's metrics (names from this module)
Report = Callable[[Mapping[str, float]], None]


def is_partial(result: Mapping[str, Any] | None) -> bool:
    """A result from a trial stopped before its full budget (``epoch < epochs_total``: lower fidelity)."""
    return bool(result) and int(result.get(EPOCH.name, 0)) < int(result.get(EPOCHS_TOTAL.name, 0))
