"""Every configuration an objective's schema accepts must train: configurations are drawn
from each registered objective's *full* schema (every gate, every boolean, every choice,
numeric knobs across their whole accepted range with the bounds themselves drawn often) and
each trains one or two epochs (a step each) on a tiny subset of the objective's own data.

Only knobs that cost compute are capped (widths, expert counts, epochs): the schema accepts
65,536-wide experts, which is legitimate but not a unit test. Everything else is drawn from
the schema as it is. A non-finite loss (``FloatingPointError``) is a reported training outcome
(the trial ends FAILED with that message), not a crash; every other exception is a defect.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import replace

import numpy as np
import pytest

from gatesearch.objectives import OBJECTIVES, get_objective
from gatesearch.objectives.base import DatasetObjective
from gatesearch.objectives.data import DataMissing, TokenCorpus
from gatesearch.objectives.schema import ParamRule, ParamSchema
from gatesearch.search.config.constraints import known_metrics

PER_OBJECTIVE = 25  # 14 objectives -> 350 configurations
ROWS = 32
#: upper caps for knobs that only cost compute
CAPS = {"n_experts": 12, "expert_hidden": 24, "expert_out": 12, "tower_hidden": 12, "batch_size": 64, "epochs": 2,
        "n_blocks": 5, "hidden": 24, "ls_sinkhorn_iters_start": 200, "ls_sinkhorn_iters_end": 200,
        "alternate_every": 8, "warmup_epochs": 4, "k": 12, "tree_depth": 6,
        # transformer LMs
        "steps_per_epoch": 2, "eval_tokens": 256, "n_layers": 3, "n_heads": 3, "d_head": 8, "context": 32,
        "ffn_mult": 2, "moe_every": 3, "mlp_mult": 2}
#: lower floors where the *small* end costs compute: a ViT patch of 1-3 px makes 88-785 tokens
#: (attention is quadratic); tests/models/test_vit.py runs patch 1 on a small image instead
FLOORS = {"patch": 4}


def draw(name: str, rule: ParamRule, rng: random.Random):
    if rule.kind == "bool":
        return rng.random() < 0.5
    if rule.kind == "str":
        return rng.choice(rule.choices)
    low, high = max(rule.low, FLOORS.get(name, rule.low)), min(rule.high, CAPS.get(name, rule.high))
    u = rng.random()
    if u < 0.15:
        v = low
    elif u < 0.3:
        v = high
    elif low > 0 and high / low > 100:  # wide positive range: log-uniform
        v = math.exp(rng.uniform(math.log(low), math.log(high)))
    elif low == 0 and high > 100:
        v = math.exp(rng.uniform(math.log(1e-6), math.log(high)))
    else:
        v = rng.uniform(low, high)
    return int(min(high, max(low, round(v)))) if rule.kind == "int" else float(v)


def sample(schema: ParamSchema, rng: random.Random) -> dict:
    cfg = {n: draw(n, r, rng) for n, r in schema.rules.items()}
    cfg["data_seed"] = 0
    for a, b in schema.le_constraints:  # the schema's own constraints: draw inside them
        if a in cfg and b in cfg and cfg[a] > cfg[b]:
            lo = schema.rules[a].low
            cfg[a] = cfg[b] if schema.rules[a].kind == "int" or rng.random() < 0.3 else rng.uniform(lo, cfg[b])
    return cfg


def _tiny(objective: DatasetObjective) -> DatasetObjective:
    data = objective.data(0)
    tiny = copy.copy(objective)
    if isinstance(data, TokenCorpus):  # a text: a few windows' worth of each split
        tiny._cache = {0: replace(data, train=data.train[:ROWS * 64], val=data.val[:ROWS * 8], test=data.test[:ROWS * 8])}
        return tiny
    cut = lambda s: replace(s, x=s.x[:ROWS], y=s.y[:ROWS], ids=s.ids[:ROWS])  # noqa: E731
    tiny._cache = {0: replace(data, train=cut(data.train), val=cut(data.val), test=cut(data.test))}
    return tiny


BUILTIN = sorted(n for n in OBJECTIVES if ":" not in n)


@pytest.mark.parametrize("name", BUILTIN)
def test_sampled_configurations_train(name):
    objective = get_objective(name)
    try:
        tiny = _tiny(objective)
    except DataMissing as e:
        pytest.skip(str(e).split(";")[0])
    rng = random.Random(f"{name}-0")
    accepted, diverged, seen, reported = 0, 0, set(), set()
    for _ in range(PER_OBJECTIVE):
        cfg = sample(objective.schema, rng)
        try:
            full = objective.resolve(cfg)
        except ValueError:
            continue  # rejected up front, with a message: the schema did its job
        accepted += 1
        seen.update(f"{k}={v}" for k, v in full.items() if isinstance(v, (bool, str)))
        try:
            out = tiny.run(full, report=lambda m: reported.update(k for k, v in m.items() if isinstance(v, (int, float))))
        except FloatingPointError:
            diverged += 1
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name}: an accepted configuration raised {type(e).__name__}: {e}\n{full}")
        assert all(np.isfinite(out[m.name]) for m in objective.objectives), (full, out)
    # what a space file's constraints may bound is what trials report (objectives.metrics *_REPORTS)
    names, prefixes, strict = known_metrics(objective)
    assert strict, f"{name} declares no reports"
    undeclared = sorted(k for k in reported if k not in names and not any(k.startswith(p) for p in prefixes))
    assert not undeclared, f"{name} reports {undeclared}, not in its Objective.reports"
    assert accepted >= PER_OBJECTIVE * 0.8, f"only {accepted} of {PER_OBJECTIVE} drawn configurations accepted"
    assert diverged <= accepted // 4, f"{diverged} of {accepted} diverged"
    # every choice of every categorical knob was exercised (e.g. every gate)
    for key, rule in objective.schema.rules.items():
        if rule.kind == "str" and len(rule.choices) <= 6:
            missing = [c for c in rule.choices if f"{key}={c}" not in seen]
            assert not missing or len(rule.choices) > 1 and len(missing) < len(rule.choices), (key, missing)


def test_topk_switch_with_noisy_load_loss_trains():
    """The configuration that used to raise UnboundLocalError (k=1, noisy, w_load > 0)."""
    objective = _tiny(get_objective("moe_digits"))
    out = objective.run(objective.resolve({"gate": "topk", "k": 1, "noisy": True, "w_load": 0.5, "epochs": 1}))
    assert np.isfinite(out["accuracy"])
