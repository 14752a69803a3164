"""Sparse-MoE classification objectives: gate type and hyper-parameters -> accuracy vs MACs.

The flat configuration keys have one home each: the network/training keys are declared
here (:data:`GENERIC_RULES`); every gate's keys (and the local search's, and EvoMoE's) are
the :func:`~gatesearch.models.knobs.knob` fields of their config dataclasses, so the schema is
built from the gate registry (:func:`moe_schema`) and a newly registered gate is searchable
at once. :func:`gate_config` builds the chosen gate's config from a flat configuration.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping

from gatesearch.models.evomoe_config import EvoMoEConfig
from gatesearch.models.gates.contract import derived_values, experts_per_row
from gatesearch.models.gates.local_search_config import LocalSearchConfig
from gatesearch.models.gates.registry import gate_config_names, gate_configs
from gatesearch.models.knobs import Knob, flat_defaults, flat_le, from_flat, knobs
from gatesearch.objectives.base import DataLoader, DatasetObjective, Report, register_objective
from gatesearch.objectives.metrics import ACCURACY, ACTIVE_EXPERTS, AUC, CLASSIFIER_REPORTS, MACS, TEST_ACCURACY
from gatesearch.objectives.schema import ParamRule, ParamSchema

R = ParamRule
#: keys of the network and training loop (every gate's own keys come from the registry)
GENERIC_RULES: dict[str, ParamRule] = {
    "n_experts": R("int", "number of shared experts", low=2, high=256),
    "local_search": R("bool", "attach permutation local search (COMET+) to the gate"),
    "expert_hidden": R("int", "expert hidden width", low=1, high=65536),
    "expert_out": R("int", "expert output width", low=1, high=65536),
    "tower_hidden": R("int", "task tower hidden width (0 = linear)", low=0, high=65536),
    "dropout": R("float", "expert dropout", low=0.0, high=0.95),
    "lr": R("float", "Adam learning rate", low=1e-7, high=10.0),
    "batch_size": R("int", "training batch size", low=1, high=1 << 20),
    "epochs": R("int", "training epochs", low=1, high=100000),
    "weight_decay": R("float", "Adam weight decay", low=0.0, high=10.0),
    "seed": R("int", "seed of init, shuffling, noise and hash tables", low=0, high=2**31 - 1),
    "data_seed": R("int", "seed of the train/val/test split (same for every trial)", low=0, high=2**31 - 1),
}
GENERIC_DEFAULTS: dict[str, Any] = {
    "gate": "topk", "n_experts": 8, "local_search": False, "expert_hidden": 64, "expert_out": 32, "tower_hidden": 0,
    "dropout": 0.0, "lr": 5e-3, "batch_size": 64, "epochs": 10, "weight_decay": 0.0, "seed": 0, "data_seed": 0,
}


def _rule(k: Knob, doc: str) -> ParamRule:
    return ParamRule(k.kind, doc, choices=k.choices, low=k.low, high=k.high)


def knob_rules(owners: Mapping[str, type]) -> tuple[dict[str, ParamRule], dict[str, Any], tuple[tuple[str, str], ...]]:
    """Rules, defaults and ``<=`` constraints of the knobs of ``owners`` (name -> config type).
    A key shared by several owners (``k`` of topk, dselect_k and comet) must agree on kind,
    bounds, choices and default; its doc lists each owner's meaning."""
    seen: dict[str, list[tuple[str, Knob]]] = {}
    le: list[tuple[str, str]] = []
    for owner, config_type in owners.items():
        for key, (_, k) in knobs(config_type).items():
            seen.setdefault(key, []).append((owner, k))
        le.extend(c for c in flat_le(config_type) if c not in le)
    rules, defaults = {}, {}
    for key, entries in seen.items():
        first = entries[0][1]
        for owner, k in entries[1:]:
            if (k.kind, k.low, k.high, k.choices, k.default) != (first.kind, first.low, first.high, first.choices,
                                                                  first.default):
                raise ValueError(f"knob {key!r}: {entries[0][0]} and {owner} declare it differently; a shared flat "
                                 f"key needs the same kind, bounds, choices and default")
        doc = first.doc if len(entries) == 1 else "; ".join(k.doc for _, k in entries)
        rules[key], defaults[key] = _rule(first, doc), first.default
    return rules, defaults, tuple(le)


def gate_schema(gates: tuple[str, ...], generic_rules: Mapping[str, ParamRule], generic_defaults: Mapping[str, Any],
                le: tuple[tuple[str, str], ...] = (), what: str = "network/training"
                ) -> tuple[ParamSchema, dict[str, Any]]:
    """Schema and defaults of an MoE objective: its own keys (``generic_rules``), the ``gate``
    choice over ``gates``, every gate's and the local search's knobs, ``k <= n_experts`` plus
    ``le``. A knob whose flat key clashes with one of the objective's own keys is an error."""
    configs = gate_configs()
    owners: dict[str, type] = {g: configs[g] for g in gates}
    owners["local_search"] = LocalSearchConfig
    rules, defaults, knob_le = knob_rules(owners)
    clash = sorted(set(rules) & set(generic_rules))
    if clash:
        raise ValueError(f"gate knobs {clash} clash with the {what} keys; rename their flat keys")
    all_rules = {"gate": R("str", "gate type", choices=gates), **generic_rules, **rules}
    return (ParamSchema(rules=all_rules, le_constraints=(("k", "n_experts"), *le, *knob_le)),
            {**generic_defaults, **defaults})


@lru_cache(maxsize=8)
def _moe_schema(gates: tuple[str, ...]) -> tuple[ParamSchema, dict[str, Any]]:
    return gate_schema(gates, GENERIC_RULES, GENERIC_DEFAULTS)


def moe_schema() -> ParamSchema:
    """The MoE objectives' schema over every gate registered now."""
    return _moe_schema(tuple(gate_config_names()))[0]


def moe_defaults() -> dict[str, Any]:
    return dict(_moe_schema(tuple(gate_config_names()))[1])


#: snapshots over the built-in gates (for objectives that extend the schema)
MOE_SCHEMA = moe_schema()
MOE_DEFAULTS = moe_defaults()


def gate_config(config: Mapping[str, Any], steps_per_epoch: int = 1, total_steps: int | None = None):
    """The chosen gate's config object for a resolved flat configuration (epoch-valued knobs
    are turned into steps with ``steps_per_epoch``; fraction-valued ones with ``total_steps``,
    the steps of the gate's phase, by default all of training)."""
    gate = config["gate"]
    if total_steps is None:
        total_steps = int(config.get("epochs", 1)) * steps_per_epoch
    configs = gate_configs()
    if gate not in configs:
        raise ValueError(f"gate: {gate!r} is not registered; registered: {list(configs)}")
    return from_flat(configs[gate], config, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                     seed=config["seed"])


def active_keys(config: Mapping[str, Any], owners: Mapping[str, type]) -> set[str]:
    """The knob keys of ``owners`` that have an effect in ``config``."""
    return {key for t in owners.values() for key, (_, k) in knobs(t).items() if k.active(config)}


class MoEClassification(DatasetObjective):
    """Train a multi-gate MoE classifier on a data set; maximise accuracy, minimise MACs."""

    objectives = (ACCURACY, MACS)
    front_columns = ("gate", "n_experts", "k", "local_search", "lr")
    summary_metrics = (TEST_ACCURACY.name, ACTIVE_EXPERTS.name)
    reports = CLASSIFIER_REPORTS

    def __init__(self, name: str, load: Callable[[int], Any], objectives: tuple = (ACCURACY, MACS)):
        """``objectives``: what the search optimises (AUC, not accuracy, for the recommender and
        census tasks)."""
        super().__init__(name, load)
        self.objectives = tuple(objectives)

    @property
    def schema(self) -> ParamSchema:  # every gate registered now, with its own knobs
        return moe_schema()

    @property
    def defaults(self) -> dict[str, Any]:
        return moe_defaults()

    #: the objective's own keys (always active; gate and component knobs come from their configs)
    own_rules: Mapping[str, ParamRule] = GENERIC_RULES
    #: components besides the gate whose knobs this objective reads (EvoMoE adds its config)
    components: Mapping[str, type] = {}

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The objective's own keys, the chosen gate's and the components' active knobs, the local
        search's when it is on: a hash-gate trial does not log tau_* or ls_*."""
        owners: dict[str, type] = {config["gate"]: gate_configs()[config["gate"]], **self.components}
        if config.get("local_search"):
            owners["local_search"] = LocalSearchConfig
        keep = {"gate", *self.own_rules, *active_keys(config, owners)}
        # a key is inert only as a knob of a gate or component that does not read it here (keys a
        # subclass adds to the schema stay, e.g. the reliability suite's fault injection)
        knob_keys = {key for t in (*gate_configs().values(), LocalSearchConfig, *self.components.values())
                     for key in knobs(t)}
        return {k: v for k, v in config.items() if k in keep or k not in knob_keys}

    def why_inert(self, key: str) -> str:
        owners = [g for g, t in gate_configs().items() if key in knobs(t)]
        if owners:
            return f"it is a knob of the {', '.join(owners)} gate(s), which this space never selects"
        if key in knobs(LocalSearchConfig):
            return "it is a local-search knob and local_search is never true in this space"
        return super().why_inert(key)

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """What the chosen gate's config says about this configuration: ``k_effective``, the most
        experts a row is dispatched to (the ``k`` of run names and front tables: hash and dts 1,
        softmax ``n_experts``; see :mod:`~gatesearch.models.gates.contract`), and the values the
        config derives itself (COMET: ``tree_depth_effective``)."""
        gate, n = gate_config(config), config["n_experts"]
        return {"k_effective": experts_per_row(gate, n), **derived_values(gate, n)}

    def summary(self, config: Mapping[str, Any]) -> dict[str, Any]:
        row = super().summary(config)
        row["k"] = self.derived(config)["k_effective"]  # what the gate says: hash routes to 1 expert, softmax to all
        return row

    def run_label(self, config: Mapping[str, Any]) -> str:
        label = f"{config['gate']} n{config['n_experts']} k{self.derived(config)['k_effective']}"
        return label + (" +ls" if config.get("local_search") else "")

    def gate_phase_steps(self, config: Mapping[str, Any], tc, n_train: int) -> int:
        """Optimisation steps during which the gate routes (all of training here)."""
        return tc.epochs * tc.steps_per_epoch(n_train)

    def build(self, config: Mapping[str, Any], data):
        """The network and its ``TrainConfig`` for a resolved configuration (``data``: a ``Dataset``)."""
        import torch

        from gatesearch.models import MoENetworkConfig
        from gatesearch.objectives.trainer import TrainConfig

        tc = TrainConfig(epochs=config["epochs"], lr=config["lr"], batch_size=config["batch_size"],
                         weight_decay=config["weight_decay"], seed=config["seed"])
        spe = tc.steps_per_epoch(len(data.train))
        ls = from_flat(LocalSearchConfig, config, steps_per_epoch=spe) if config["local_search"] else None
        gate = gate_config(config, spe, total_steps=self.gate_phase_steps(config, tc, len(data.train)))
        net_cfg = MoENetworkConfig(gate=gate, n_experts=config["n_experts"], expert_hidden=config["expert_hidden"],
                                   expert_out=config["expert_out"], dropout=config["dropout"],
                                   tower_hidden=config["tower_hidden"], local_search=ls)
        torch.manual_seed(config["seed"])
        return self.network(net_cfg, config, data, tc), tc

    def network(self, net_cfg, config: Mapping[str, Any], data, tc):
        from gatesearch.models import MoENetwork

        return MoENetwork(net_cfg, d_in=data.d_in, n_outputs=data.n_classes, num_ids=data.num_ids)

    checkpoints = True

    def run(self, config: Mapping[str, Any], *, report: Report | None = None, device: str = "cpu",
            restore: Mapping[str, Any] | None = None, save=None) -> dict[str, float]:
        from gatesearch.objectives.trainer import train

        full = self.resolve(config)
        data = self.data(full["data_seed"])
        net, tc = self.build(full, data)
        return train(net, data, tc, report=report, device=device, restore=restore, save=save)


class EvoMoEClassification(MoEClassification):
    """EvoMoE: one shared expert for ``share_epochs``, spawned into ``n_experts`` by
    ``diversify``, then the DTS gate (its temperature schedule, decay and switch count from the
    spawn)."""

    @property
    def schema(self) -> ParamSchema:
        base = moe_schema()
        rules, _, le = knob_rules({"evomoe": EvoMoEConfig})
        return ParamSchema(rules={**base.rules, "gate": R("str", "EvoMoE always uses the DTS gate", choices=("dts",)),
                                  **rules},
                           le_constraints=base.le_constraints + le + (("share_epochs", "epochs"),))

    @property
    def defaults(self) -> dict[str, Any]:
        return {**moe_defaults(), "gate": "dts", **flat_defaults(EvoMoEConfig)}

    components = {"evomoe": EvoMoEConfig}

    def gate_phase_steps(self, config: Mapping[str, Any], tc, n_train: int) -> int:
        spe = tc.steps_per_epoch(n_train)
        share = from_flat(EvoMoEConfig, config, steps_per_epoch=spe).share_steps
        return max(1, tc.epochs * spe - share)  # the DTS phase starts at the spawn

    def network(self, net_cfg, config, data, tc):
        from gatesearch.models import EvoMoENetwork

        evo = from_flat(EvoMoEConfig, config, steps_per_epoch=tc.steps_per_epoch(len(data.train)),
                        seed=config["seed"])
        return EvoMoENetwork(net_cfg, evo, d_in=data.d_in, n_outputs=data.n_classes, num_ids=data.num_ids)


register_objective(MoEClassification("moe_digits", DataLoader("load_digits")))
register_objective(EvoMoEClassification("evomoe_digits", DataLoader("load_digits")))
# the sets below need `make data` (except the char LM, read from CPython's own pydoc texts)
register_objective(MoEClassification("moe_fashion", DataLoader("load_fashion_mnist")))
register_objective(MoEClassification("moe_multifashion", DataLoader("load_multi_fashion_mnist")))
register_objective(MoEClassification("moe_movielens", DataLoader("load_movielens"), (AUC, MACS)))
register_objective(MoEClassification("moe_adult", DataLoader("load_adult"), (AUC, MACS)))
register_objective(MoEClassification("moe_charlm", DataLoader("load_char_lm")))
register_objective(EvoMoEClassification("evomoe_charlm", DataLoader("load_char_lm")))
