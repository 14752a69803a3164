"""A no-op objective for measuring orchestration overhead (``bench.noop:NoOp``):
reports one epoch instantly, accuracy = x and MACs = 1 - x."""

from gatesearch.objectives import Objective
from gatesearch.objectives.metrics import ACCURACY, MACS
from gatesearch.objectives.schema import ParamRule, ParamSchema


class NoOp(Objective):
    name = "bench.noop:NoOp"
    objectives = (ACCURACY, MACS)
    schema = ParamSchema(rules={"x": ParamRule("float", "the point", low=0.0, high=1.0),
                                "epochs": ParamRule("int", "always 1", low=1, high=1)})
    defaults = {"x": 0.5, "epochs": 1}

    def run(self, config, *, report=None, device="cpu"):
        full = self.resolve(config)
        metrics = {"accuracy": full["x"], "macs_per_sample": 1.0 - full["x"], "epoch": 1}
        if report:
            report(metrics)
        return metrics
