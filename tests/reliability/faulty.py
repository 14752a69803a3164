"""A user objective (loaded as ``tests.reliability.faulty:FaultyDigits``) with fault injection:
the digits MoE whose ``fault`` parameter makes a trial raise, or feeds it NaN inputs so that the
real training loop meets a non-finite loss."""

from __future__ import annotations

from dataclasses import replace

from gatesearch.objectives.data import load_digits
from gatesearch.objectives.moe_classification import MOE_DEFAULTS, MOE_SCHEMA, MoEClassification
from gatesearch.objectives.schema import ParamRule, ParamSchema

FAULTS = ("none", "raise", "nan", "slow")


def _nan_inputs(data):
    split = data.train
    x = split.x.clone()
    x[:, 0] = float("nan")
    return replace(data, train=replace(split, x=x))


class FaultyDigits(MoEClassification):
    """``tests.reliability.faulty:FaultyDigits``: the digits MoE (per-epoch checkpoints, as every
    built-in objective) with an injected ``fault``, an optional sleep after each epoch, and an
    optional ``epoch_log`` with one line per epoch trained (to count the work a restart repeats)."""

    schema = ParamSchema(rules={**MOE_SCHEMA.rules, "fault": ParamRule("str", "injected fault", choices=FAULTS),
                                "sleep_s": ParamRule("float", "seconds to sleep per epoch", low=0.0, high=60.0),
                                "epoch_log": ParamRule("str", "file with one line per epoch trained")},
                         le_constraints=MOE_SCHEMA.le_constraints)
    defaults = {**MOE_DEFAULTS, "fault": "none", "sleep_s": 0.0, "epoch_log": ""}

    def __init__(self):
        super().__init__("tests.reliability.faulty:FaultyDigits", lambda seed: load_digits(seed=seed))

    def run(self, config, *, report=None, device="cpu", restore=None, save=None):
        full = self.resolve(config)
        if full["fault"] == "raise":
            raise RuntimeError(f"injected fault in trial with lr={full['lr']}")
        data = self.data(full["data_seed"])
        if full["fault"] == "nan":
            data = _nan_inputs(data)
        net, tc = self.build(full, data)
        inner = report

        def report(m):  # noqa: F811 - log the epoch, report it, then (a slow trial) sleep
            if full["epoch_log"]:
                with open(full["epoch_log"], "a") as f:
                    f.write(f"{m['epoch']}\n")
            if inner:
                inner(m)
            if full["sleep_s"] > 0:
                import time

                time.sleep(full["sleep_s"])

        from gatesearch.objectives.trainer import train

        return train(net, data, tc, report=report, device=device, restore=restore, save=save)


class CrashOnceDigits(MoEClassification):
    """``tests.reliability.faulty:CrashOnceDigits``: the digits MoE with per-epoch checkpoints
    whose first attempt raises after ``crash_after`` epochs (a marker file remembers it); every
    epoch trained is appended to ``epoch_log`` (to count the work a restart repeats)."""

    schema = ParamSchema(rules={**MOE_SCHEMA.rules,
                                "crash_after": ParamRule("int", "epochs before the one crash", low=1, high=100),
                                "marker": ParamRule("str", "file that says the crash happened"),
                                "epoch_log": ParamRule("str", "file with one line per epoch trained")},
                         le_constraints=MOE_SCHEMA.le_constraints)
    defaults = {**MOE_DEFAULTS, "crash_after": 2, "marker": "", "epoch_log": ""}

    def __init__(self):
        super().__init__("tests.reliability.faulty:CrashOnceDigits", lambda seed: load_digits(seed=seed))

    def run(self, config, *, report=None, device="cpu", restore=None, save=None):
        from pathlib import Path

        full = self.resolve(config)
        marker, log = Path(full["marker"]), Path(full["epoch_log"])

        def crash_once(metrics):
            with log.open("a") as f:
                f.write(f"{metrics['epoch']}\n")
            if report:
                report(metrics)
            if metrics["epoch"] == full["crash_after"] and not marker.exists():
                marker.write_text("crashed")
                raise RuntimeError("injected crash after a checkpoint")

        return super().run(full, report=crash_once, device=device, restore=restore, save=save)
