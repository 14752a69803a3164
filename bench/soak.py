"""Reliability soak: many searches with injected trial faults, each driver SIGKILLed at a random
moment and finished with `gatesearch resume` (possibly killed again), checking every time that

* trials that finished + trials that failed = the budget, one child run per trial id;
* failed trials are exactly the injected ones (raise / NaN loss), none on the front;
* the front logged on the parent equals the front recomputed from the finished children.

    python bench/soak.py [--rounds 10] [--budget 12] [--seed 0]

Prints one line per round and a summary; exits 1 if any invariant broke.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins

from tests import harness  # noqa: E402 - real processes: the CLI as a subprocess

SPACE = """\
name: soak
objective: tests.reliability.faulty:FaultyDigits
search: {{searcher: tpe, num_samples: {budget}, max_concurrent: 2, seed: {seed}, front_every: 3}}
fixed: {{epochs: 6, expert_hidden: 16, expert_out: 8, n_experts: 4}}
params:
  fault: {{type: categorical, choices: [none, raise, nan]}}
  gate: {{type: categorical, choices: [topk, hash, softmax]}}
  k: {{type: int, low: 1, high: 2}}
  lr: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true}}
"""


def check(out: Path, budget: int, workdir: Path) -> list[str]:
    from mlflow.tracking import MlflowClient

    from gatesearch.search.front.report import read_front
    from gatesearch.search.tracking.tracker import Tracker

    uri = f"sqlite:///{out / 'mlflow.db'}"
    tracker = Tracker(uri, "soak")
    problems = []
    [(parent, _)] = tracker.searches()
    children = tracker.children(parent)
    live = [c for c in children if "gatesearch.orphaned" not in c.tags]
    ids = [c.trial_id for c in children]
    if len(ids) != len(set(ids)):
        problems.append("duplicate child runs")
    finished = [c for c in live if c.status == "FINISHED"]
    failed = [c for c in live if c.status == "FAILED"]
    if len(finished) + len(failed) != budget:
        problems.append(f"finished {len(finished)} + failed {len(failed)} != budget {budget}")
    if any(c.params.get("fault") == "none" for c in failed):
        problems.append("a fault-free trial failed")
    if any(c.params.get("fault") != "none" for c in finished):
        problems.append("an injected fault finished")
    _, _, _, _, front = read_front(tracker, parent, ("accuracy", "macs_per_sample"), ("max", "min"))
    logged = json.loads(Path(MlflowClient(uri).download_artifacts(parent, "pareto_front.json",
                                                                   str(workdir))).read_text())
    if sorted(r["run_id"] for r in logged["front"]) != sorted(r["run_id"] for r in front):
        problems.append("logged front != recomputed front")
    return problems


def round_(i: int, budget: int, rng: random.Random) -> tuple[bool, str]:
    work = Path(tempfile.mkdtemp(prefix=f"soak{i}-"))
    (work / "space.yaml").write_text(SPACE.format(budget=budget, seed=rng.randrange(1000)))
    marker = uuid.uuid4().hex
    kills, t0 = 0, time.time()
    args = ["run", "space.yaml", "--output-dir", "out"]
    while True:
        log = work / f"attempt{kills}.log"
        proc = harness.gatesearch(*args, log=log, GATESEARCH_SOAK=marker)
        try:
            deadline = time.time() + rng.uniform(4, 25)
            while proc.poll() is None and time.time() < deadline:
                time.sleep(0.2)
            if proc.poll() is None and kills < 3:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                kills += 1
                args = ["resume", "out"]
                continue
            code = proc.wait(timeout=900)
        finally:
            harness.kill_env(f"GATESEARCH_SOAK={marker}")
        break
    if code != 0:
        return False, f"exit {code}: {harness.tail(log, 800)}"
    problems = check(work / "out", budget, work)
    return not problems, f"{kills} kills, {time.time() - t0:.0f} s" + (f": {problems}" if problems else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    ok = 0
    for i in range(args.rounds):
        good, text = round_(i, args.budget, rng)
        ok += good
        print(f"round {i}: {'ok' if good else 'BROKEN'} ({text})", flush=True)
    print(f"{ok}/{args.rounds} rounds kept every invariant")
    sys.exit(0 if ok == args.rounds else 1)


if __name__ == "__main__":
    main()
