"""Space files: parsing, line-numbered errors, validation against the objective."""

import textwrap
from pathlib import Path

import optuna
import pytest

from gatesearch.search.config.validate import validate_space_file
from gatesearch.spaces import Categorical, Float, Int, SpaceError, load_space_file, parse_space_file

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
objective: moe_digits
search: {searcher: nsga2, num_samples: 4}
fixed: {epochs: 2}
params:
  gate: {type: categorical, choices: [topk, comet]}
  n_experts: {type: int, low: 4, high: 8}
  k: {type: int, low: 1, high: 4}
  gamma: {type: float, low: 1e-2, high: 10, log: true, when: {gate: [comet]}}
  lr: 0.01
"""


def _err(text: str, validate: bool = True) -> SpaceError:
    with pytest.raises(SpaceError) as info:
        sf = parse_space_file(textwrap.dedent(text), "space.yaml")
        if validate:
            validate_space_file(sf)
    return info.value


def test_example_files_validate():
    files = sorted((ROOT / "spaces" / "examples").glob("*.yaml"))
    assert files
    for f in files:
        objective, settings = validate_space_file(load_space_file(f))
        assert objective.name and settings.num_samples >= 1


def test_good_file_parses_into_typed_params():
    sf = parse_space_file(GOOD, "good.yaml")
    p = sf.space.params
    assert p["gamma"] == Float(0.01, 10.0, True, p["gamma"].when) and p["gamma"].when[0].parent == "gate"
    assert isinstance(p["k"], Int) and isinstance(p["gate"], Categorical)
    assert sf.fixed == {"epochs": 2} and sf.name == "good"
    objective, settings = validate_space_file(sf)
    assert settings.searcher == "nsga2" and settings.num_samples == 4


# (file text, field the error names, its line, words in the message); also run through the CLI
# in tests/reliability/test_malformed_spaces.py
MALFORMED = [
    # unknown gate, with a did-you-mean
    (GOOD.replace("[topk, comet]", "[topk, comet, dselect]"), "params.gate.choices.2", 5, "did you mean 'dselect_k'"),
    # k can exceed n_experts
    (GOOD.replace("k: {type: int, low: 1, high: 4}", "k: {type: int, low: 1, high: 6}"), "params.k.high", 7,
     "k <= n_experts must hold"),
    # missing field
    (GOOD.replace("n_experts: {type: int, low: 4, high: 8}", "n_experts: {type: int, low: 4}"), "params.n_experts",
     6, "missing field 'high'"),
    (GOOD.replace("objective: moe_digits\n", ""), "", None, "missing field 'objective'"),
    (GOOD.replace("gate: {type: categorical,", "gate: {"), "params.gate", 5, "missing field 'type'"),
    # unknown keys, with a did-you-mean
    (GOOD.replace("n_experts:", "n_expert:"), "params.n_expert", 6, "did you mean 'n_experts'"),
    (GOOD.replace("log: true", "logg: true"), "params.gamma.logg", 8, "did you mean 'log'"),
    (GOOD.replace("search:", "serch:"), "serch", 2, "did you mean 'search'"),
    (GOOD.replace("searcher: nsga2", "searcher: nsga"), "search.searcher", 2, "did you mean 'nsga2'"),
    (GOOD.replace("objective: moe_digits", "objective: moe_digit"), "objective", 1, "did you mean 'moe_digits'"),
    # wrong types
    (GOOD.replace("low: 4, high: 8", "low: four, high: 8"), "params.n_experts.low", 6, "expected a number"),
    (GOOD.replace("low: 4, high: 8", "low: 4.5, high: 8"), "params.n_experts.low", 6, "expected an integer"),
    (GOOD.replace("lr: 0.01", "lr: fast"), "params.lr", 9, "expected float"),
    (GOOD.replace("num_samples: 4", "num_samples: many"), "search.num_samples", 2, "expected int"),
    (GOOD.replace("lr: 0.01", "hash_kind: {type: int, low: 1, high: 2}"), "params.hash_kind.type", 9,
     "takes str values"),
    # empty choices, low > high, log with non-positive bound
    (GOOD.replace("[topk, comet]", "[]"), "params.gate.choices", 5, "non-empty list"),
    (GOOD.replace("low: 4, high: 8", "low: 8, high: 4"), "params.n_experts.low", 6, "low=8 > high=4"),
    (GOOD.replace("low: 1e-2, high: 10", "low: 0, high: 10"), "params.gamma.low", 8, "log scale needs low > 0"),
    # out of the objective's range
    (GOOD.replace("low: 4, high: 8", "low: 1, high: 8"), "params.n_experts.low", 6, "below the minimum 2"),
    # conditions
    (GOOD.replace("when: {gate: [comet]}", "when: {gates: [comet]}"), "params.gamma.when", 8,
     "unknown parameter 'gates'"),
    (GOOD.replace("when: {gate: [comet]}", "when: {gate: [comett]}"), "params.gamma.when", 8, "not choices of 'gate'"),
    (GOOD.replace("gate: {type: categorical, choices: [topk, comet]}",
                  "gate: {type: categorical, choices: [topk, comet], when: {hash_kind: [random]}}").replace(
        "lr: 0.01", "hash_kind: {type: categorical, choices: [random], when: {gate: [topk]}}"),
     "params", None, "cyclic conditions"),
    (GOOD.replace("lr: 0.01", "ls_tau_end: {type: float, low: 1e-7, high: 1e-2, log: true}"),
     "params.ls_tau_end.high", 9, "ls_tau_end <= ls_tau_start must hold"),
    # fixed section
    (GOOD.replace("fixed: {epochs: 2}", "fixed: {epochs: 0}"), "fixed.epochs", 3, "below the minimum 1"),
    (GOOD.replace("fixed: {epochs: 2}", "fixed: {lr: 2}"), "fixed.lr", 3, "both fixed and searched"),
    # YAML syntax
    (GOOD.replace("k: {type: int, low: 1, high: 4}", "k: {type: int, low: 1, high: 4"), "", None, "YAML syntax error"),
    (GOOD.replace("params:\n", "params:\n\t"), "", None, "YAML syntax error"),  # a tab in indentation
    (GOOD.replace("search: {searcher: nsga2, num_samples: 4}", "search: {searcher: nsga2, num_samples: 0}"),
     "search.num_samples", 2, "must be >= 1"),
    (GOOD.replace("search: {searcher: nsga2, num_samples: 4}", "search: {searcher: nsga2, max_failures: -1}"),
     "search.max_failures", 2, "must be >= 0"),
    (GOOD.replace("search: {searcher: nsga2, num_samples: 4}", "search: {searcher: nsga2, scheduler: asha}"),
     "search.scheduler", 2, "unknown 'asha'"),
]


@pytest.mark.parametrize("text, field, line, words", MALFORMED)
def test_malformed_spaces_name_file_line_field_and_fix(text, field, line, words):
    e = _err(text)
    assert words in str(e)
    assert str(e).startswith("space.yaml")
    assert e.field.startswith(field)
    if line is not None:
        assert e.line == line
    assert "fix:" in str(e)


def test_yaml_syntax_error_has_a_line():
    e = _err(GOOD.replace("k: {type: int, low: 1, high: 4}", "k: {type: int, low: 1, high: 4"))
    assert e.line is not None and 7 <= e.line <= 9


def test_missing_file():
    with pytest.raises(SpaceError, match="file not found"):
        load_space_file("/nonexistent/space.yaml")


def test_unsafe_yaml_tags_are_rejected():
    e = _err("objective: !!python/object/apply:os.system ['echo hi']\nparams: {k: 1}\n", validate=False)
    assert "YAML syntax error" in str(e) or "could not determine a constructor" in str(e)


def test_optuna_compilation_is_inclusive_and_conditional():
    sf = parse_space_file(GOOD, "good.yaml")
    from gatesearch.spaces import suggest

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(300):
        trial = study.ask()
        fixed = suggest(trial, sf.space)
        seen.append({**trial.params, **fixed})
        study.tell(trial, 0.0)
    ks = {s["k"] for s in seen}
    assert ks == {1, 2, 3, 4}  # both ends reachable
    assert {s["n_experts"] for s in seen} == {4, 5, 6, 7, 8}
    assert all(("gamma" in s) == (s["gate"] == "comet") for s in seen)
    assert all(0.01 <= s["gamma"] <= 10 for s in seen if "gamma" in s)
    assert all(s["lr"] == 0.01 for s in seen)


def test_space_sampling_respects_conditions_and_seed():
    sf = parse_space_file(GOOD, "good.yaml")
    a = [sf.space.sample(i) for i in range(50)]
    assert a == [sf.space.sample(i) for i in range(50)]
    assert all(("gamma" in s) == (s["gate"] == "comet") for s in a)
