"""Bad input by class, not by instance: every numeric search setting out of range, files that
are not text, duplicate keys at any depth, random damage to a good file. And valid but unusual
files (only fixed values, one choice, deep `when` chains, unicode names) are accepted.
Every malformed file exits 2 with one error naming file, line, field and a fix; nothing raises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatesearch.search.config.settings import BOUNDS
from gatesearch.search.ui.cli import app
from tests.spaces.test_space_file import GOOD


def _validate(tmp_path: Path, text: str | bytes):
    path = tmp_path / "space.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = CliRunner().invoke(app, ["space", "validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result, " ".join(result.output.split()), path


def _rejected(tmp_path, text, *words):
    result, message, path = _validate(tmp_path, text)
    assert result.exit_code == 2, result.output
    assert message.startswith("error:") and str(path) in message and "fix:" in message, message
    for w in words:
        assert w in message, (w, message)
    return message


def _values_out_of_range():
    for name, (low, high, _) in BOUNDS.items():
        step = 1 if isinstance(low, int) and isinstance(high, int) else 0.5
        below = low - step if low > 0 or step == 1 else -1.0
        yield name, below
        yield name, high * 10 + 1
        if step != 1:
            yield name, ".nan"
            yield name, ".inf"


@pytest.mark.parametrize("name, value", list(_values_out_of_range()))
def test_every_numeric_search_setting_out_of_range_is_rejected_at_its_line(tmp_path, name, value):
    text = GOOD.replace("num_samples: 4}", f"num_samples: 4, {name}: {value}}}") if name != "num_samples" else \
        GOOD.replace("num_samples: 4", f"num_samples: {value}")
    message = _rejected(tmp_path, text, f"search.{name}")
    assert "space.yaml:2:" in message


def test_a_file_that_is_not_text_is_rejected(tmp_path):
    _rejected(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not a UTF-8 text file")
    _rejected(tmp_path, GOOD.encode() + b"\x00\x00", "not a text file")


@pytest.mark.parametrize("text, where", [
    (GOOD.replace("fixed: {epochs: 2}", "fixed: {epochs: 2}\nfixed: {epochs: 3}"), ("fixed", 3, 4)),
    (GOOD + "  lr: 0.02\n", ("params.lr", 9, 10)),
    (GOOD.replace("{type: int, low: 1, high: 4}", "{type: int, low: 1, high: 4, low: 2}"), ("params.k.low", 7, 7)),
    (GOOD.replace("search: {searcher: nsga2, num_samples: 4}", "search: {searcher: tpe, searcher: nsga2}"),
     ("search.searcher", 2, 2)),
])
def test_duplicate_keys_at_any_depth_are_rejected_with_both_lines(tmp_path, text, where):
    field, first, second = where
    message = _rejected(tmp_path, text, field, f"lines {first} and {second}", "written twice")
    assert f"space.yaml:{second}:" in message


@pytest.mark.parametrize("text", [
    "objective: moe_digits\nfixed: {epochs: 1, gate: hash}\nparams: {}\n",  # only fixed values
    "objective: moe_digits\nparams:\n  epochs: 1\n  gate: {type: fixed, value: hash}\n",  # all parameters fixed
    GOOD.replace("[topk, comet]", "[comet]"),  # a single choice
    # a deep `when` chain: gate -> local_search -> ls_budget_epochs, and gate -> noisy -> w_load
    GOOD + "  local_search: {type: bool, when: {gate: [comet, topk]}}\n"
           "  ls_budget_epochs: {type: float, low: 0.5, high: 2, when: {local_search: [true]}}\n"
           "  noisy: {type: bool, when: {gate: [topk]}}\n"
           "  w_load: {type: float, low: 0.0, high: 1.0, when: {noisy: [true]}}\n",
    "name: recherche-façon-日本語\n" + GOOD,  # unicode name
    "# commentaire: é à ü\n" + GOOD,
])
def test_valid_but_unusual_files_are_accepted(tmp_path, text):
    result, message, _ = _validate(tmp_path, text)
    assert result.exit_code == 0, message
    assert message.startswith("ok")


def test_random_damage_to_a_good_file_never_raises(tmp_path):
    """200 seeded mutations (deleted, duplicated, swapped characters and lines): every one is
    either accepted or rejected with exit 2 and a located message; none raises."""
    rng = random.Random(0)
    outcomes = {0: 0, 2: 0}
    for _ in range(200):
        text = GOOD
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text))
            op = rng.choice(["del", "dup", "swap", "line", "char"])
            if op == "del":
                text = text[:i] + text[i + rng.randint(1, 6):]
            elif op == "dup":
                text = text[:i] + text[i:i + 8] + text[i:]
            elif op == "swap" and i + 1 < len(text):
                text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
            elif op == "line":
                lines = text.splitlines(keepends=True)
                a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[a], lines[b] = lines[b], lines[a]
                text = "".join(lines)
            else:
                text = text[:i] + rng.choice("{}[]:,-'\"#&*!|>%@` \t\n") + text[i:]
        result, message, path = _validate(tmp_path, text)
        assert result.exit_code in (0, 2), (text, result.output)
        if result.exit_code == 2:
            assert message.startswith("error:") and str(path) in message, (text, message)
        outcomes[result.exit_code] += 1
    assert outcomes[2] > 50 and outcomes[0] > 5, outcomes
