"""Live progress: the plain, line-per-event form (what CI logs and files get)."""

from __future__ import annotations

import io
import re

from gatesearch.objectives import get_objective
from gatesearch.search.progress import SearchProgress
from gatesearch.search.runner import run_search
from gatesearch.spaces import parse_space_file

LINE = re.compile(r"^\[\d+m\d\ds\] ")


def test_plain_lines_follow_every_event():
    out = io.StringIO()
    objective = get_objective("moe_digits")
    with SearchProgress(objective, total=4, stream=out, live=False) as p:
        p.on_start("t_1", {"gate": "comet", "n_experts": 8, "k": 2})
        p.on_result("t_1", {"epoch": 1, "epochs_total": 3})
        p.on_complete("t_1", {"accuracy": 0.9, "macs_per_sample": 1000.0, "epoch": 3, "epochs_total": 3})
        p.on_start("t_2", {"gate": "hash"})
        p.on_complete("t_2", {"accuracy": 0.8, "macs_per_sample": 500.0, "epoch": 1, "epochs_total": 3})
        p.on_start("t_3", {"gate": "topk", "k": 1})
        p.on_error("t_3", "Traceback...\nFloatingPointError: non-finite training loss nan at epoch 1")
        p.on_start("t_4", {"gate": "softmax"})
    lines = out.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].endswith("search started: 4 trials of moe_digits")
    assert "trial comet n8 k2 (1) started" in lines[1] and "0/4 finished, 1 running" in lines[1]
    assert "trial comet n8 k2 (1) finished: accuracy=0.9 macs_per_sample=1,000 (on the front)" in lines[2]
    assert "1/4 finished, 0 running, 0 failed, 0 stopped early" in lines[2]
    assert "front 1," in lines[2] and "best accuracy 0.9, macs_per_sample 1,000" in lines[2] and "left" in lines[2]
    assert "trial hash n8 k1 (2) stopped early at epoch 1" in lines[4] and "1 stopped early" in lines[4]
    assert "trial topk n8 k1 (3) FAILED: FloatingPointError: non-finite training loss nan" in lines[6]
    assert lines[-1].split("] ", 1)[1].startswith("search ended: 1/4 finished, 1 running, 1 failed, 1 stopped early")


def test_a_search_prints_a_line_per_trial_event(ray_session, tmp_path, capsys):
    text = ("name: progress\nobjective: moe_digits\nsearch: {num_samples: 3, max_concurrent: 2, seed: 0, dedup: false}\n"
            "fixed: {epochs: 1}\nparams:\n  gate: {type: categorical, choices: [topk, hash]}\n")
    result = run_search(parse_space_file(text, str(tmp_path / "p.yaml")), output_dir=tmp_path / "runs",
                        progress="plain")
    lines = [line for line in capsys.readouterr().out.splitlines() if LINE.match(line)]
    assert lines[0].endswith("search started: 3 trials of moe_digits")
    assert sum("started |" in line for line in lines) == 3
    assert sum(" finished: accuracy=" in line for line in lines) == 3
    assert "search ended: 3/3 finished, 0 running, 0 failed" in lines[-1]
    assert f"front {len(result.front)}," in lines[-1]
