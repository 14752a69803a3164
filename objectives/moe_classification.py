"""Sparse-MoE classification objectives: gate type and hyper-parameters -> accuracy vs MACs.

Flat configuration keys (all optional, defaults below) map onto
:class:`models.MoENetworkConfig`, the gate configs and :class:`TrainConfig`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

from gatesearch.models import (
    CometGateConfig,
    DSelectKGateConfig,
    DTSGateConfig,
    EvoMoEConfig,
    EvoMoENetwork,
    HashGateConfig,
    LocalSearchConfig,
    MoENetwork,
    MoENetworkConfig,
    SoftmaxGateConfig,
    TopKGateConfig,
    gate_names,
    tree_depth,
)
from gatesearch.models.evomoe import DIVERSIFY
from gatesearch.models.gates.dts import DECAYS
from gatesearch.models.gates.hash import HASH_KINDS
from gatesearch.objectives.base import DatasetObjective, Report, register_objective
from gatesearch.objectives.data import (
    Dataset,
    load_adult,
    load_char_lm,
    load_digits,
    load_fashion_mnist,
    load_movielens,
    load_multi_fashion_mnist,
)
from gatesearch.objectives.metrics import (
    ACCURACY,
    ACTIVE_EXPERTS,
    AUC,
    MACS,
    TEST_ACCURACY,
)
from gatesearch.objectives.schema import ParamRule, ParamSchema
from gatesearch.objectives.trainer import TrainConfig, train

R = ParamRule
MOE_SCHEMA = ParamSchema(
    rules={
        "gate": R("str", "gate type", choices=tuple(gate_names())),
        "n_experts": R("int", "number of shared experts", low=2, high=256),
        "k": R("int", "experts per sample (trees for comet, selectors for dselect_k; hash forces 1)", low=1, high=256),
        "gamma": R("float", "smooth-step width (dselect_k, comet)", low=1e-6, high=1e3),
        "entropy_weight": R("float", "entropy regulariser λ (dselect_k, comet)", low=0.0, high=1e3),
        "zeta": R("float", "reachable-mass weight, n not a power of 2 (dselect_k)", low=0.0, high=1e3),
        "per_example": R("bool", "dselect_k: per-example (True) or static task-level selectors"),
        "node_bias": R("bool", "comet: hyperplanes have a bias"),
        "noisy": R("bool", "topk: learned Gaussian noise (Shazeer et al.)"),
        "w_importance": R("float", "topk: importance loss weight", low=0.0, high=100.0),
        "w_load": R("float", "topk: load loss weight (needs noisy)", low=0.0, high=100.0),
        "hash_kind": R("str", "hash: table kind", choices=HASH_KINDS),
        "local_search": R("bool", "attach permutation local search (COMET+) to the gate"),
        "ls_budget_epochs": R("float", "local search: epochs before the permutation is hardened", low=1e-3, high=1e4),
        "ls_tau_start": R("float", "local search: initial Sinkhorn temperature", low=1e-12, high=1e3),
        "ls_tau_end": R("float", "local search: final Sinkhorn temperature", low=1e-12, high=1e3),
        "ls_zeta": R("float", "local search: permutation entropy weight", low=0.0, high=1e3),
        "tau_max": R("float", "dts: Gumbel-softmax temperature at the start", low=1e-3, high=100.0),
        "tau_min": R("float", "dts: temperature floor", low=1e-3, high=100.0),
        "tau_decay": R("str", "dts: temperature schedule", choices=DECAYS),
        "tau_decay_epochs": R("float", "dts: epochs for tau to reach tau_min (D)", low=1e-3, high=1e4),
        "dts_threshold": R("float", "dts: an expert is active above this Gumbel-softmax weight", low=0.0, high=0.5),
        "switch_epoch": R("float", "dts: switch to top-1 routing at this epoch (-1 = never)", low=-1.0, high=1e4),
        "use_gumbel_gates": R("bool", "dts: combine with the Gumbel-softmax weights (else softmax)"),
        "balance_weight": R("float", "dts: balance-loss weight", low=0.0, high=100.0),
        "expert_hidden": R("int", "expert hidden width", low=1, high=65536),
        "expert_out": R("int", "expert output width", low=1, high=65536),
        "tower_hidden": R("int", "task tower hidden width (0 = linear)", low=0, high=65536),
        "dropout": R("float", "expert dropout", low=0.0, high=0.95),
        "lr": R("float", "Adam learning rate", low=1e-7, high=10.0),
        "batch_size": R("int", "training batch size", low=1, high=1 << 20),
        "epochs": R("int", "training epochs", low=1, high=100000),
        "weight_decay": R("float", "Adam weight decay", low=0.0, high=10.0),
        "seed": R("int", "seed of init, shuffling and noise", low=0, high=2**31 - 1),
        "data_seed": R("int", "seed of the train/val/test split (same for every trial)", low=0, high=2**31 - 1),
    },
    le_constraints=(("k", "n_experts"), ("ls_tau_end", "ls_tau_start"), ("tau_min", "tau_max")),
)

MOE_DEFAULTS: dict[str, Any] = {
    "gate": "topk", "n_experts": 8, "k": 2, "gamma": 1.0, "entropy_weight": 0.1, "zeta": 1.0,
    "per_example": True, "node_bias": True, "noisy": True, "w_importance": 0.0, "w_load": 0.0,
    "hash_kind": "random", "local_search": False, "ls_budget_epochs": 1.0, "ls_tau_start": 1e-3,
    "ls_tau_end": 1e-7, "ls_zeta": 1e-4, "expert_hidden": 64, "expert_out": 32, "tower_hidden": 0,
    "tau_max": 1.0, "tau_min": 0.5, "tau_decay": "exp", "tau_decay_epochs": 4.0, "dts_threshold": 1e-3,
    "switch_epoch": -1.0, "use_gumbel_gates": True, "balance_weight": 1e-2,
    "dropout": 0.0, "lr": 5e-3, "batch_size": 64, "epochs": 10, "weight_decay": 0.0, "seed": 0, "data_seed": 0,
}


def gate_config(config: Mapping[str, Any], steps_per_epoch: int = 1):
    """The gate config object for a resolved flat configuration (epoch-valued schedule
    knobs are turned into steps with ``steps_per_epoch``)."""
    gate = config["gate"]
    if gate == "dts":
        switch = config["switch_epoch"]
        return DTSGateConfig(tau_max=config["tau_max"], tau_min=config["tau_min"], decay=config["tau_decay"],
                             decay_steps=max(1, math.ceil(config["tau_decay_epochs"] * steps_per_epoch)),
                             threshold=config["dts_threshold"],
                             switch_step=-1 if switch < 0 else math.ceil(switch * steps_per_epoch),
                             use_gumbel_gates=config["use_gumbel_gates"], balance_weight=config["balance_weight"])
    if gate == "softmax":
        return SoftmaxGateConfig()
    if gate == "topk":
        return TopKGateConfig(k=config["k"], noisy=config["noisy"], w_importance=config["w_importance"],
                              w_load=config["w_load"] if config["noisy"] else 0.0)
    if gate == "hash":
        return HashGateConfig(kind=config["hash_kind"], seed=config["seed"])
    if gate == "dselect_k":
        return DSelectKGateConfig(k=config["k"], gamma=config["gamma"], entropy_weight=config["entropy_weight"],
                                  zeta=config["zeta"], per_example=config["per_example"])
    if gate == "comet":
        return CometGateConfig(k=config["k"], gamma=config["gamma"], entropy_weight=config["entropy_weight"],
                               node_bias=config["node_bias"])
    raise ValueError(f"gate: no flat-config mapping for {gate!r}")


class MoEClassification(DatasetObjective):
    """Train a multi-gate MoE classifier on a data set; maximise accuracy, minimise MACs."""

    objectives = (ACCURACY, MACS)
    schema = MOE_SCHEMA
    defaults = MOE_DEFAULTS
    front_columns = ("gate", "n_experts", "k", "local_search", "lr")
    summary_metrics = (TEST_ACCURACY.name, ACTIVE_EXPERTS.name)

    def __init__(self, name: str, load: Callable[[int], Dataset], objectives: tuple = (ACCURACY, MACS)):
        """``objectives``: what the search optimises (AUC, not accuracy, for the recommender and
        census tasks)."""
        super().__init__(name, load)
        self.objectives = tuple(objectives)

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        gate = config["gate"]
        k_eff = {"softmax": config["n_experts"], "hash": 1, "dts": 1}.get(gate, config["k"])
        out: dict[str, Any] = {"k_effective": k_eff}
        if gate == "comet":
            out["tree_depth"] = tree_depth(config["n_experts"])
        return out

    def summary(self, config: Mapping[str, Any]) -> dict[str, Any]:
        row = super().summary(config)
        row["k"] = self.derived(config)["k_effective"]  # hash routes to 1 expert, softmax to all
        return row

    def build(self, config: Mapping[str, Any], data: Dataset) -> tuple[MoENetwork, TrainConfig]:
        """The network and training settings for a resolved configuration."""
        tc = TrainConfig(epochs=config["epochs"], lr=config["lr"], batch_size=config["batch_size"],
                         weight_decay=config["weight_decay"], seed=config["seed"])
        ls = None
        if config["local_search"]:
            steps = max(1, math.ceil(config["ls_budget_epochs"] * tc.steps_per_epoch(len(data.train))))
            ls = LocalSearchConfig(budget_steps=steps, tau_start=config["ls_tau_start"],
                                   tau_end=config["ls_tau_end"], zeta=config["ls_zeta"])
        net_cfg = MoENetworkConfig(gate=gate_config(config, tc.steps_per_epoch(len(data.train))), n_experts=config["n_experts"],
                                   expert_hidden=config["expert_hidden"], expert_out=config["expert_out"],
                                   dropout=config["dropout"], tower_hidden=config["tower_hidden"], local_search=ls)
        torch.manual_seed(config["seed"])
        return self.network(net_cfg, config, data, tc), tc

    def network(self, net_cfg: MoENetworkConfig, config: Mapping[str, Any], data: Dataset,
                tc: TrainConfig) -> MoENetwork:
        return MoENetwork(net_cfg, d_in=data.d_in, n_outputs=data.n_classes, num_ids=data.num_ids)

    def run(self, config: Mapping[str, Any], *, report: Report | None = None, device: str = "cpu") -> dict[str, float]:
        full = self.resolve(config)
        data = self.data(full["data_seed"])
        net, tc = self.build(full, data)
        return train(net, data, tc, report=report, device=device)


class EvoMoEClassification(MoEClassification):
    """EvoMoE: one shared expert for ``share_epochs``, spawned into ``n_experts`` by
    ``diversify``, then the DTS gate (its temperature schedule starts at the spawn)."""

    schema = ParamSchema(rules={**MOE_SCHEMA.rules,
                                "gate": R("str", "EvoMoE always uses the DTS gate", choices=("dts",)),
                                "share_epochs": R("float", "epochs of phase 1 (one shared expert)", low=0.0, high=1e4),
                                "diversify": R("str", "how experts are spawned from the shared one", choices=DIVERSIFY),
                                "mask_ratio": R("float", "fraction of weights zeroed per spawned expert (mask)",
                                                low=0.0, high=0.95),
                                "noise_std": R("float", "relative spawn noise (noise)", low=0.0, high=10.0)},
                         le_constraints=MOE_SCHEMA.le_constraints + (("share_epochs", "epochs"),))
    defaults = {**MOE_DEFAULTS, "gate": "dts", "share_epochs": 1.0, "diversify": "mask", "mask_ratio": 0.3,
                "noise_std": 0.1}

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"k_effective": 1}

    def network(self, net_cfg, config, data, tc) -> MoENetwork:
        evo = EvoMoEConfig(share_steps=math.ceil(config["share_epochs"] * tc.steps_per_epoch(len(data.train))),
                           diversify=config["diversify"], mask_ratio=config["mask_ratio"],
                           noise_std=config["noise_std"], seed=config["seed"])
        return EvoMoENetwork(net_cfg, evo, d_in=data.d_in, n_outputs=data.n_classes, num_ids=data.num_ids)


register_objective(MoEClassification("moe_digits", lambda seed: load_digits(seed=seed)))
register_objective(EvoMoEClassification("evomoe_digits", lambda seed: load_digits(seed=seed)))
# the sets below need `make data` (except the char LM, read from CPython's own pydoc texts)
register_objective(MoEClassification("moe_fashion", lambda seed: load_fashion_mnist(seed=seed)))
register_objective(MoEClassification("moe_multifashion", lambda seed: load_multi_fashion_mnist(seed=seed)))
register_objective(MoEClassification("moe_movielens", lambda seed: load_movielens(seed=seed), (AUC, MACS)))
register_objective(MoEClassification("moe_adult", lambda seed: load_adult(seed=seed), (AUC, MACS)))
register_objective(MoEClassification("moe_charlm", lambda seed: load_char_lm(seed=seed)))
register_objective(EvoMoEClassification("evomoe_charlm", lambda seed: load_char_lm(seed=seed)))
