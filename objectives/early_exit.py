"""Early-exit objectives: JEI-DNN (learned gates) and the confidence-threshold baseline.

Both maximise accuracy and minimise the **expected** MACs per sample, where a sample exiting
at l pays C_l (everything evaluated up to l). The threshold baseline reports, besides the
operating point chosen by ``budget_q``, the whole validation-chosen budget sweep as
``operating_points`` in its final result: one trained backbone, a whole accuracy-vs-MACs
curve (the search logs it and builds a front over all points of all trials). JEI-DNN reports
its trained network at every exit threshold 0.05..0.95 the same way.

Backbones: an MLP (``*_exit_digits``, ``*_exit_fashion``) or a small ViT with an exit on the CLS
token after every block (``*_exit_vit_fashion``, :mod:`~gatesearch.models.vit`).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from gatesearch.objectives.base import DataLoader, DatasetObjective, Report, register_objective
from gatesearch.objectives.exit_options import CONFIDENCES, IM_LOSSES
from gatesearch.objectives.metrics import ACCURACY, EXIT_REPORTS, MACS, TEST_ACCURACY, TEST_MACS
from gatesearch.objectives.schema import ParamRule, ParamSchema

R = ParamRule
EXIT_SCHEMA = ParamSchema(
    rules={
        "n_blocks": R("int", "backbone blocks L (an exit after each)", low=2, high=32),
        "hidden": R("int", "block width", low=1, high=65536),
        "dropout": R("float", "dropout after each block", low=0.0, high=0.95),
        "lr": R("float", "Adam learning rate (backbone, classifiers)", low=1e-7, high=10.0),
        "gate_lr": R("float", "JEI-DNN: Adam learning rate of the gates", low=1e-7, high=10.0),
        "batch_size": R("int", "training batch size", low=1, high=1 << 20),
        "epochs": R("int", "training epochs in total", low=1, high=100000),
        "warmup_epochs": R("int", "epochs training backbone + classifiers before the gates (JEI-DNN)", low=1,
                           high=100000),
        "lambda_cost": R("float", "JEI-DNN λ: cost weight in the surrogate exit targets", low=0.0, high=100.0),
        "alternate_every": R("int", "JEI-DNN: batches per gate/classifier phase", low=1, high=100000),
        "im_loss": R("str", "JEI-DNN classifier loss (weighted = ρ detached, plain = released code)",
                     choices=IM_LOSSES),
        "freeze_ims": R("bool", "JEI-DNN: freeze each classifier once its validation accuracy stops improving, "
                        "then train only the gates (released code: true)"),
        "reset_alternation": R("bool", "JEI-DNN: restart the gate/classifier alternation with a gate phase every "
                               "epoch (released code: true)"),
        "exit_threshold": R("float", "JEI-DNN: exit when the conditional exit probability >= this", low=0.01,
                            high=1.0),
        "confidence": R("str", "threshold baseline: confidence measure", choices=CONFIDENCES),
        "budget_q": R("float", "threshold baseline: reported operating point q (exit prior ∝ q^k)", low=0.05,
                      high=1.95),
        "seed": R("int", "seed of init and shuffling", low=0, high=2**31 - 1),
        "data_seed": R("int", "seed of the train/val/test split", low=0, high=2**31 - 1),
    },
    le_constraints=(("warmup_epochs", "epochs"),),
)
EXIT_DEFAULTS: dict[str, Any] = {
    "n_blocks": 4, "hidden": 64, "dropout": 0.0, "lr": 3e-3, "gate_lr": 0.05, "batch_size": 64, "epochs": 8, "warmup_epochs": 4,
    "lambda_cost": 0.5, "alternate_every": 20, "im_loss": "weighted", "exit_threshold": 0.5,
    "freeze_ims": False, "reset_alternation": False,
    "confidence": "max_softmax", "budget_q": 1.0, "seed": 0, "data_seed": 0,
}

#: keys that only one method reads (the other ignores them)
METHOD_ONLY: dict[str, tuple[str, ...]] = {
    "jei": ("gate_lr", "warmup_epochs", "lambda_cost", "alternate_every", "im_loss", "exit_threshold", "freeze_ims",
            "reset_alternation"),
    "threshold": ("confidence", "budget_q"),
}


class EarlyExitClassification(DatasetObjective):
    """Single-task classification with an early-exit MLP; ``method`` is ``jei`` or ``threshold``."""

    objectives = (ACCURACY, MACS)
    defaults = EXIT_DEFAULTS
    front_columns = ("n_blocks", "lambda_cost", "confidence", "lr")
    summary_metrics = (TEST_ACCURACY.name,)
    reports = EXIT_REPORTS

    def __init__(self, name: str, load: Callable[[int], Any], method: str):
        if method not in ("jei", "threshold"):
            raise ValueError(f"method must be 'jei' or 'threshold', got {method!r}")
        super().__init__(name, load)
        self.method = method

    @property
    def schema(self) -> ParamSchema:
        """The shared schema, without constraints on keys this method never reads (the
        baseline does not care whether warmup_epochs <= epochs)."""
        inert = set(self.inert())
        return ParamSchema(rules=EXIT_SCHEMA.rules,
                           le_constraints=tuple(c for c in EXIT_SCHEMA.le_constraints if not inert & set(c)))

    def run_label(self, config: Mapping[str, Any]) -> str:
        if self.method == "jei":
            return f"jei L{config['n_blocks']} λ{config['lambda_cost']:.3g}"
        return f"threshold L{config['n_blocks']} {config['confidence']}"

    def inert(self) -> tuple[str, ...]:
        """Keys this objective accepts (they share one schema) but its method never reads."""
        other = "threshold" if self.method == "jei" else "jei"
        return METHOD_ONLY[other]

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k not in self.inert()}

    def why_inert(self, key: str) -> str:
        other = "threshold" if self.method == "jei" else "jei"
        if key in METHOD_ONLY[other]:
            return (f"only the {other} method reads it and {self.name} uses {self.method} "
                    f"(JEI-DNN exits with learned gates; the baseline picks its operating point with budget_q)")
        return super().why_inert(key)

    def build(self, config: Mapping[str, Any], data):
        """The early-exit network for a resolved configuration (``data``: a ``Dataset``)."""
        import torch

        from gatesearch.models import EarlyExitConfig, EarlyExitNetwork

        torch.manual_seed(config["seed"])
        cfg = EarlyExitConfig(n_blocks=config["n_blocks"], hidden=config["hidden"], dropout=config["dropout"],
                              exit_threshold=config["exit_threshold"])
        return EarlyExitNetwork(cfg, d_in=data.d_in, n_classes=data.n_classes[0], gated=self.method == "jei")

    checkpoints = True

    def run(self, config: Mapping[str, Any], *, report: Report | None = None, device: str = "cpu",
            restore: Mapping[str, Any] | None = None, save=None) -> dict[str, Any]:
        from gatesearch.objectives.exit_evaluation import budget_sweep, evaluate_gated, threshold_sweep
        from gatesearch.objectives.exit_training import ExitTrainConfig, train_early_exit

        full = self.resolve(config)
        data = self.data(full["data_seed"])
        net = self.build(full, data)
        # the baseline trains backbone + classifiers throughout (warmup_epochs is a JEI-DNN knob)
        warmup = full["warmup_epochs"] if self.method == "jei" else full["epochs"]
        tc = ExitTrainConfig(epochs=full["epochs"], warmup_epochs=warmup, lr=full["lr"],
                             gate_lr=full["gate_lr"],
                             batch_size=full["batch_size"], lambda_cost=full["lambda_cost"],
                             alternate_every=full["alternate_every"], im_loss=full["im_loss"], seed=full["seed"],
                             freeze_ims=full["freeze_ims"], reset_alternation=full["reset_alternation"])
        sweep: list[dict] = []

        def evaluate(model, epoch: int) -> dict[str, Any]:
            if self.method == "jei":
                out = evaluate_gated(model, data, device)
                if epoch == tc.epochs:
                    test = evaluate_gated(model, data, device, split="test")
                    out[TEST_ACCURACY.name], out[TEST_MACS.name] = test[ACCURACY.name], test[MACS.name]
                    # post-hoc: the same trained network at every exit threshold (many front points)
                    out["operating_points"] = threshold_sweep(model, data, device)
                return out
            sweep[:] = budget_sweep(model, data, device, full["confidence"])
            point = min(sweep, key=lambda p: abs(p["q"] - full["budget_q"]))
            out = {k: point[k] for k in ("accuracy", "macs_per_sample", "ece")}
            if epoch == tc.epochs:
                out[TEST_ACCURACY.name], out[TEST_MACS.name] = point["test_accuracy"], point["test_macs_per_sample"]
                out["operating_points"] = [{k: p[k] for k in ("q", "accuracy", "macs_per_sample", "test_accuracy",
                                                              "test_macs_per_sample")} for p in sweep]
            return out

        return train_early_exit(net, data, tc, jei=self.method == "jei", report=report, device=device,
                                evaluate=evaluate, restore=restore, save=save)


VIT_RULES: dict[str, ParamRule] = {
    "n_heads": R("int", "ViT: attention heads (width = n_heads * d_head)", low=1, high=64),
    "d_head": R("int", "ViT: width of one attention head", low=1, high=256),
    "patch": R("int", "ViT: patch side in pixels (the image is zero-padded to a multiple)", low=1, high=64),
    "mlp_mult": R("int", "ViT: MLP hidden width = mlp_mult * width", low=1, high=16),
}
VIT_DEFAULTS: dict[str, Any] = {"n_heads": 2, "d_head": 16, "patch": 7, "mlp_mult": 2, "n_blocks": 4, "epochs": 6,
                                "warmup_epochs": 3, "batch_size": 128, "lr": 2e-3}


class EarlyExitViTClassification(EarlyExitClassification):
    """The early-exit objectives on a ViT backbone (square single-channel images: the side is
    sqrt of the data set's feature count)."""

    front_columns = ("n_blocks", "patch", "lambda_cost", "confidence", "lr")

    @property
    def schema(self) -> ParamSchema:
        base = super().schema
        rules = {k: v for k, v in base.rules.items() if k != "hidden"}
        return ParamSchema(rules={**rules, **VIT_RULES}, le_constraints=base.le_constraints)

    @property
    def defaults(self) -> dict[str, Any]:
        return {**{k: v for k, v in EXIT_DEFAULTS.items() if k != "hidden"}, **VIT_DEFAULTS}

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"width": config["n_heads"] * config["d_head"]}

    def run_label(self, config: Mapping[str, Any]) -> str:
        return "vit " + super().run_label(config) + f" p{config['patch']}"

    def build(self, config: Mapping[str, Any], data):
        import math

        import torch

        from gatesearch.models.vit import EarlyExitViT, ViTExitConfig

        side = math.isqrt(data.d_in)
        if side * side != data.d_in:
            raise ValueError(f"{self.name}: {data.d_in} features are not a square image")
        torch.manual_seed(config["seed"])
        cfg = ViTExitConfig(n_blocks=config["n_blocks"], n_heads=config["n_heads"], d_head=config["d_head"],
                            patch=config["patch"], mlp_mult=config["mlp_mult"], dropout=config["dropout"],
                            exit_threshold=config["exit_threshold"])
        return EarlyExitViT(cfg, image=(1, side, side), n_classes=data.n_classes[0], gated=self.method == "jei")


register_objective(EarlyExitClassification("early_exit_digits", DataLoader("load_digits"), "jei"))
register_objective(EarlyExitClassification("threshold_exit_digits", DataLoader("load_digits"), "threshold"))
register_objective(EarlyExitClassification("early_exit_fashion", DataLoader("load_fashion_mnist"), "jei"))
register_objective(EarlyExitClassification("threshold_exit_fashion", DataLoader("load_fashion_mnist"), "threshold"))
register_objective(EarlyExitViTClassification("early_exit_vit_fashion", DataLoader("load_fashion_mnist"), "jei"))
register_objective(EarlyExitViTClassification("threshold_exit_vit_fashion", DataLoader("load_fashion_mnist"),
                                              "threshold"))
