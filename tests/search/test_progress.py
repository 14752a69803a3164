"""Live progress: the plain, line-per-event form (what CI logs and files get)."""

from __future__ import annotations

import io
import logging
import re

import pytest

from gatesearch.objectives import get_objective
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.lifecycle.trial_error import error_summary
from gatesearch.search.ui.progress import RAY_TRIAL_ERRORS, SearchProgress
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


def test_trials_paused_at_a_rung_are_counted_apart_from_running_ones():
    out, paused = io.StringIO(), []
    with SearchProgress(get_objective("moe_digits"), total=3, stream=out, live=False, paused=lambda: paused) as p:
        p.on_start("t_1", {"gate": "hash"})
        p.on_start("t_2", {"gate": "topk", "k": 1})
        paused.append("t_1")  # promotion MO-ASHA: t_1 waits at a rung
        p.on_start("t_3", {"gate": "softmax"})
        table = p.render()
    lines = out.getvalue().splitlines()
    assert "0/3 finished, 2 running, 1 paused at a rung, 0 failed" in lines[-2], lines
    assert "(paused at a rung)" in str(table.columns[0]._cells[0]) and "paused" not in str(table.columns[0]._cells[1])


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


# Ray's error file of a trial whose objective raised (trial.error_file, logged as the child run's
# error.txt): Ray's colour codes, its frames, then the user's frame and exception
RAY_ERROR = """Failure # 1 (occurred at 2026-11-30_08-46-43)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=7483, ip=127.0.0.1, actor_id=d5ba3a7c1952531101000000, repr=_trainable)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/trainable.py", line 329, in train
    raise skipped from exception_cause(skipped)
  File "/venv/lib/python3.11/site-packages/ray/air/_internal/util.py", line 98, in run
    self._ret = self._target(*self._args, **self._kwargs)
                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/function_trainable.py", line 249, in _trainable_func
    output = fn()
             ^^^^
  File "/work/main/search/tuner.py", line 505, in _trainable
    reports.finish(objective.run(full, report=reports, device=device, restore=restore, save=pending.append))
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/home/me/proj/my_objective.py", line 40, in run
    raise ValueError(f"expert width {w} does not divide {d}:\\n  use a multiple of {d}")
ValueError: expert width 24 does not divide 64:
  use a multiple of 64
"""
# a retried trial whose worker died the second time: Ray's message only, no traceback
RAY_ACTOR_DIED = RAY_ERROR + """Failure # 2 (occurred at 2026-11-30_08-47-10)
The actor died unexpectedly before finishing this task.
\tclass_name: ImplicitFunc
\tactor_id: 336bdeecae9d31a944f5489b01000000
\tpid: 7538
"""


def test_a_failed_trial_is_one_line_with_its_own_error_and_where_the_traceback_is(caplog):
    out = io.StringIO()
    names = {"t_1": "topk n8 k1 #1"}
    with SearchProgress(get_objective("moe_digits"), total=3, stream=out, live=False, run_name=names.get) as p:
        p.on_start("t_1", {"gate": "topk", "k": 1})
        p.on_error("t_1", RAY_ERROR)
        p.on_start("t_2", {"gate": "hash"})
        p.on_error("t_2", RAY_ACTOR_DIED)  # no run name known (yet): the trial's tag instead
        # what Tune's controller logs for each failed trial (~60 lines of traceback) is left out
        try:
            raise RuntimeError("injected")
        except RuntimeError as e:
            logging.getLogger(RAY_TRIAL_ERRORS).error("Trial task failed for trial _trainable_t_1", exc_info=e)
    lines = out.getvalue().splitlines()
    assert len(lines) == 6, lines  # started, event per trial event, ended: one line each
    failed = [line for line in lines if " FAILED: " in line]
    assert ("trial topk n8 k1 (1) FAILED: ValueError: expert width 24 does not divide 64: (at "
            "/home/me/proj/my_objective.py:40) (full traceback: "
            "MLflow run 'topk n8 k1 #1', artifact error.txt)") in failed[0], failed
    assert ("trial hash n8 k1 (2) FAILED: The actor died unexpectedly before finishing this task. (full traceback: "
            "its MLflow run (tag gatesearch.trial_id=t_2), artifact error.txt)") in failed[1], failed
    assert "Traceback" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert not [r for r in caplog.records if r.getMessage().startswith("Trial task failed")]
    # only while the progress is shown
    logging.getLogger(RAY_TRIAL_ERRORS).error("Trial task failed for trial _trainable_t_3")
    assert [r for r in caplog.records if r.getMessage().startswith("Trial task failed")]


@pytest.mark.parametrize("text, summary", [
    # the user's own file and line: the deepest frame outside packages, the standard library and ours
    (RAY_ERROR, "ValueError: expert width 24 does not divide 64: (at /home/me/proj/my_objective.py:40)"),
    (RAY_ACTOR_DIED, "The actor died unexpectedly before finishing this task."),
    # chained: the exception that ended the trial
    ('Traceback (most recent call last):\n  File "a.py", line 1, in f\n    g()\nKeyError: \'k\'\n\nDuring handling '
     'of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File "a.py", '
     'line 3, in f\n    raise RuntimeError("no k")\nRuntimeError: no k\n', "RuntimeError: no k (at a.py:3)"),
    # a syntax error shows the code and a caret, indented, before its line
    ('  File "/p/m.py", line 3\n    def f(:\n          ^\nSyntaxError: invalid syntax\n',
     "SyntaxError: invalid syntax (at /p/m.py:3)"),
    ("Failure # 1 (occurred at x)\nFloatingPointError: non-finite training loss nan at epoch 1\n",
     "FloatingPointError: non-finite training loss nan at epoch 1"),
    ("", "error"),
])
def test_error_summary_is_the_trials_own_exception(text, summary):
    assert error_summary(text) == summary


def test_an_error_raised_in_gatesearch_or_a_library_names_no_user_file():
    from gatesearch.search.lifecycle import trial_error

    ours = trial_error._ROOT / "objectives" / "trainer.py"
    text = (f'Traceback (most recent call last):\n  File "{ours}", line 9, in run\n    x()\n'
            '  File "/venv/lib/python3.11/site-packages/torch/nn/functional.py", line 3, in x\n    y\n'
            "RuntimeError: shape mismatch\n")
    assert error_summary(text) == "RuntimeError: shape mismatch"
