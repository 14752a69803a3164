"""MoE transformer language models: gate and architecture -> bits per character vs MACs per token.

``moe_lm_shakespeare``: a decoder-only transformer (:mod:`~gatesearch.models.transformer`) with a
token-level MoE FFN in every ``moe_every``-th block, trained as a character LM on Shakespeare's
works split by play (``make data``). ``evomoe_lm_shakespeare``: the same with EvoMoE in every MoE
block (one shared expert for ``share_epochs``, spawning, then the DTS gate).

The default configuration (2 blocks of d_model 64, 8 experts, context 64, 4 epochs of 250 steps of
32 windows) trains in 30-50 s on one CPU core (a trial's share of a 2-core laptop) to about 2.6-2.9
bits per character on the held-out plays; the same objective scales by configuration
(``n_layers``, ``n_heads``·``d_head``, ``context``, ``batch_size``, ``steps_per_epoch``) on a GPU.
An epoch is ``steps_per_epoch`` steps (see :mod:`~gatesearch.objectives.lm_training`), so knobs in
epochs (``share_epochs``, ``tau_decay_epochs``, ``ls_budget_epochs``) are in units of that many
steps and may be fractional.

Post-hoc sweep: a Top-k trial also evaluates its trained model at every inference k from 1 to
``min(n_experts, 2k)`` and reports them as ``operating_points`` (one trained model, several front
points), as the threshold baseline does for exit budgets.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from gatesearch.models.evomoe_config import EvoMoEConfig
from gatesearch.models.gates.local_search_config import LocalSearchConfig
from gatesearch.models.gates.registry import gate_config_names
from gatesearch.models.knobs import flat_defaults, from_flat
from gatesearch.objectives.base import DataLoader, register_objective
from gatesearch.objectives.metrics import (
    ACTIVE_EXPERTS,
    BPC,
    DROPPED_FRACTION,
    LM_REPORTS,
    MACS_PER_TOKEN,
    TEST_BPC,
)
from gatesearch.objectives.moe_classification import (
    MoEClassification,
    gate_config,
    gate_schema,
    knob_rules,
)
from gatesearch.objectives.schema import ParamRule, ParamSchema

R = ParamRule
#: keys of the transformer and its training loop (every gate's keys come from the registry)
LM_RULES: dict[str, ParamRule] = {
    "n_layers": R("int", "transformer blocks", low=1, high=128),
    "n_heads": R("int", "attention heads (d_model = n_heads * d_head)", low=1, high=128),
    "d_head": R("int", "width of one attention head", low=1, high=512),
    "ffn_mult": R("int", "FFN hidden width = ffn_mult * d_model (dense FFNs and every expert)", low=1, high=16),
    "context": R("int", "tokens per training/evaluation window (T)", low=2, high=8192),
    "moe_every": R("int", "block i has an MoE FFN when (i + 1) % moe_every == 0 (1 = every block)", low=1, high=128),
    "n_experts": R("int", "experts per MoE FFN", low=2, high=256),
    "local_search": R("bool", "attach permutation local search (COMET+) to every MoE gate"),
    "capacity_factor": R("float", "expert capacity factor (tokens beyond ceil(cf * assignments / n) per expert are "
                         "dropped); 0 = no limit", low=0.0, high=64.0),
    "dropout": R("float", "dropout (attention output, FFN hidden, embeddings)", low=0.0, high=0.9),
    "balance_combine": R("str", "how the MoE layers' balance losses add up: sum (ours) or average (released "
                         "EvoMoE)", choices=("sum", "average")),
    "lr": R("float", "AdamW peak learning rate (linear warm-up, cosine to 0.1 lr)", low=1e-7, high=1.0),
    "weight_decay": R("float", "AdamW weight decay (matrices only)", low=0.0, high=10.0),
    "warmup_fraction": R("float", "share of the steps with a linear learning-rate warm-up", low=0.0, high=0.5),
    "batch_size": R("int", "windows per optimisation step", low=1, high=1 << 16),
    "steps_per_epoch": R("int", "optimisation steps per epoch (an epoch is a reporting period)", low=1,
                         high=10_000_000),
    "epochs": R("int", "epochs (validation and a report after each)", low=1, high=100_000),
    "eval_tokens": R("int", "tokens of the validation/test split scored per evaluation", low=1, high=100_000_000),
    "k_sweep": R("bool", "Top-k gates: also evaluate the trained model at every inference k in 1..min(n, 2k) "
                 "(operating points)"),
    "seed": R("int", "seed of init, window sampling and gate noise", low=0, high=2**31 - 1),
    "data_seed": R("int", "seed of the held-out plays (same for every trial)", low=0, high=2**31 - 1),
}
LM_DEFAULTS: dict[str, Any] = {
    "gate": "topk", "n_layers": 2, "n_heads": 2, "d_head": 32, "ffn_mult": 4, "context": 64, "moe_every": 1,
    "n_experts": 8, "local_search": False, "capacity_factor": 0.0, "dropout": 0.0, "balance_combine": "sum",
    "lr": 3e-3, "weight_decay": 0.1,
    "warmup_fraction": 0.05, "batch_size": 32, "steps_per_epoch": 250, "epochs": 4, "eval_tokens": 16384,
    "k_sweep": True, "seed": 0, "data_seed": 0,
}


def lm_schema() -> tuple[ParamSchema, dict[str, Any]]:
    """The LM objectives' schema over every gate registered now, and the defaults."""
    return _lm_schema(tuple(gate_config_names()))


@lru_cache(maxsize=8)
def _lm_schema(gates: tuple[str, ...]) -> tuple[ParamSchema, dict[str, Any]]:
    return gate_schema(gates, LM_RULES, LM_DEFAULTS, le=(("moe_every", "n_layers"),), what="transformer/training")


class MoELanguageModel(MoEClassification):
    """Train an MoE transformer LM; minimise validation bits per character and MACs per token."""

    objectives = (BPC, MACS_PER_TOKEN)
    front_columns = ("gate", "n_experts", "k", "n_layers", "moe_every", "capacity_factor", "local_search", "lr")
    summary_metrics = (TEST_BPC.name, ACTIVE_EXPERTS.name, DROPPED_FRACTION.name)
    reports = LM_REPORTS

    def __init__(self, name: str, load):
        super().__init__(name, load, objectives=(BPC, MACS_PER_TOKEN))

    @property
    def schema(self) -> ParamSchema:
        return lm_schema()[0]

    @property
    def defaults(self) -> dict[str, Any]:
        return lm_schema()[1]

    own_rules = LM_RULES

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = super().active(config)
        if config["gate"] != "topk":  # the inference-k sweep is a Top-k feature
            out.pop("k_sweep", None)
        return out

    def why_inert(self, key: str) -> str:
        if key == "k_sweep":
            return "the inference-k sweep needs the topk gate, which this space never selects"
        return super().why_inert(key)

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = super().derived(config)
        out["d_model"] = config["n_heads"] * config["d_head"]
        out["moe_blocks"] = config["n_layers"] // config["moe_every"]
        return out

    def run_label(self, config: Mapping[str, Any]) -> str:
        return (f"{config['gate']} n{config['n_experts']} k{self.derived(config)['k_effective']} "
                f"L{config['n_layers']}m{config['moe_every']}" + (" +ls" if config.get("local_search") else ""))

    def gate_phase_steps(self, config: Mapping[str, Any], tc, n_train: int = 0) -> int:
        return tc.total_steps

    def train_config(self, config: Mapping[str, Any]):
        from gatesearch.objectives.lm_training import LMTrainConfig

        return LMTrainConfig(epochs=config["epochs"], steps_per_epoch=config["steps_per_epoch"],
                             batch_size=config["batch_size"], context=config["context"], lr=config["lr"],
                             weight_decay=config["weight_decay"], warmup_fraction=config["warmup_fraction"],
                             eval_tokens=config["eval_tokens"], seed=config["seed"])

    def evomoe(self, config: Mapping[str, Any], tc) -> EvoMoEConfig | None:
        return None

    def build(self, config: Mapping[str, Any], corpus):
        """The model and its ``LMTrainConfig`` for a resolved configuration."""
        import torch

        from gatesearch.models.transformer import MoETransformerConfig, MoETransformerLM

        tc = self.train_config(config)
        spe = tc.steps_per_epoch
        ls = from_flat(LocalSearchConfig, config, steps_per_epoch=spe) if config["local_search"] else None
        gate = gate_config(config, spe, total_steps=self.gate_phase_steps(config, tc))
        cfg = MoETransformerConfig(vocab=corpus.num_ids, context=config["context"], n_layers=config["n_layers"],
                                   n_heads=config["n_heads"], d_head=config["d_head"], ffn_mult=config["ffn_mult"],
                                   moe_every=config["moe_every"], n_experts=config["n_experts"], gate=gate,
                                   local_search=ls, capacity_factor=config["capacity_factor"] or None,
                                   evomoe=self.evomoe(config, tc), dropout=config["dropout"],
                                   aux_combine=config["balance_combine"])
        torch.manual_seed(config["seed"])
        return MoETransformerLM(cfg), tc

    def run(self, config: Mapping[str, Any], *, report=None, device: str = "cpu", restore=None,
            save=None) -> dict[str, float]:
        from gatesearch.objectives.lm_training import k_sweep, train_lm

        full = self.resolve(config)
        corpus = self.data(full["data_seed"])
        model, tc = self.build(full, corpus)
        final = None
        if full["gate"] == "topk" and full["k_sweep"]:
            ks = list(range(1, min(full["n_experts"], 2 * full["k"]) + 1))

            def final(m, step):
                return {"operating_points": k_sweep(m, corpus, tc, step, device, ks)}

        return train_lm(model, corpus, tc, report=report, device=device, final=final, restore=restore, save=save)


class EvoMoELanguageModel(MoELanguageModel):
    """EvoMoE on the transformer LM: every MoE FFN trains one shared expert for
    ``share_epochs`` (dense), spawns ``n_experts`` by ``diversify``, then routes with the DTS gate
    (its schedules count from the spawn)."""

    @property
    def schema(self) -> ParamSchema:
        base = lm_schema()[0]
        rules, _, le = knob_rules({"evomoe": EvoMoEConfig})
        return ParamSchema(rules={**base.rules, "gate": R("str", "EvoMoE always uses the DTS gate", choices=("dts",)),
                                  **rules},
                           le_constraints=base.le_constraints + le + (("share_epochs", "epochs"),))

    @property
    def defaults(self) -> dict[str, Any]:
        return {**lm_schema()[1], "gate": "dts", **flat_defaults(EvoMoEConfig)}

    components = {"evomoe": EvoMoEConfig}

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Also the shared phase in optimisation steps and training tokens (what ``share_epochs``
        means for this run: epochs of ``steps_per_epoch`` steps)."""
        share = from_flat(EvoMoEConfig, config, steps_per_epoch=config["steps_per_epoch"]).share_steps
        return {**super().derived(config), "share_steps": share,
                "share_tokens": share * config["batch_size"] * config["context"]}

    def gate_phase_steps(self, config: Mapping[str, Any], tc, n_train: int = 0) -> int:
        share = from_flat(EvoMoEConfig, config, steps_per_epoch=tc.steps_per_epoch).share_steps
        return max(1, tc.total_steps - share)  # the DTS phase starts at the spawn

    def evomoe(self, config: Mapping[str, Any], tc) -> EvoMoEConfig | None:
        return from_flat(EvoMoEConfig, config, steps_per_epoch=tc.steps_per_epoch, seed=config["seed"])


register_objective(MoELanguageModel("moe_lm_shakespeare", DataLoader("load_shakespeare")))
register_objective(EvoMoELanguageModel("evomoe_lm_shakespeare", DataLoader("load_shakespeare")))
