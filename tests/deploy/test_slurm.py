"""The Slurm recipe (deploy/slurm/gatesearch.sbatch) on 127.0.0.1, with stand-ins for `srun` (runs
the step here, each "node" with its own Ray temp dir) and `scontrol` (two host names; `requeue`
recorded): a Ray head and a worker node, a search across both, Slurm's SIGTERM to the batch script
(preemption, the time limit) stopping it resumably and requeueing the job, then the requeued job
resuming it to the full budget. What cannot run here: a real Slurm (sbatch's #SBATCH options, srun
placing steps on other machines, the signal Slurm sends)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from gatesearch.search.tracking.tracker import Tracker
from tests import harness

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "slurm" / "gatesearch.sbatch"
SPACE = """\
name: slurm
objective: moe_digits
search: {searcher: random, num_samples: 6, max_concurrent: 2, seed: 4, front_every: 2}
fixed: {epochs: 6, expert_hidden: 32, expert_out: 16}
params:
  gate: {type: categorical, choices: [topk, hash, softmax]}
  n_experts: {type: int, low: 2, high: 8}
  lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
"""
SRUN = """#!/bin/bash
# stand-in for srun: drop the step options, run the command here; a node is a Ray temp dir of its own
node=local
while [ $# -gt 0 ]; do
  case "$1" in
    -w) node=$2; shift 2 ;;
    --*) shift ;;
    *) break ;;
  esac
done
tmp=/tmp/gss-$node-$GSS_JOB
mkdir -p "$tmp"
export RAY_TMPDIR=$tmp
if [ "$(basename "$1")" = ray ] && [ "$2" = start ]; then
  case " $* " in *" --temp-dir="*) exec "$@" ;; esac  # the head: the recipe's own temp dir (it checks it)
  exec "$@" --temp-dir "$tmp"
fi
exec "$@"
"""
SCONTROL = """#!/bin/bash
# stand-in for scontrol: two nodes; requeue is recorded
case "$1 $2" in
  "show hostnames") printf 'nodea\\nnodeb\\n' ;;
  requeue*) echo "$2" >> "$GSS_REQUEUED" ;;
  *) echo "scontrol stand-in: $*" >&2; exit 1 ;;
esac
"""


def _stand_ins(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    job = uuid.uuid4().hex[:8]
    return {"PATH": f"{bin_dir}:{harness.BIN}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node[a-b]",
            "SLURM_JOB_ID": "4242", "SLURM_CPUS_PER_TASK": "1", "GATESEARCH_HEAD_IP": "127.0.0.1",
            "GATESEARCH_RAY_PORT": str(harness.free_port()), "GATESEARCH_RAY_ARGS": "--node-ip-address=127.0.0.1",
            "GATESEARCH_PYTHON": str(harness.BIN / "python"), "GSS_JOB": job,
            "GSS_REQUEUED": str(tmp_path / "requeued"), "GATESEARCH_TEST_RUN": job,
            "GATESEARCH_RAY_TEMP": f"/tmp/gss-nodea-{job}"}  # the head node's temp dir (short: AF_UNIX paths)


def _batch(tmp_path: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    (tmp_path / "space.yaml").write_text(SPACE)
    return harness.spawn(["bash", str(SCRIPT), "space.yaml", str(tmp_path / "out")], log, **env)


@pytest.mark.slow
def test_slurm_recipe_runs_across_two_nodes_stops_on_sigterm_requeues_and_resumes(tmp_path: Path):
    env = _stand_ins(tmp_path)
    db = tmp_path / "out" / "mlflow.db"
    try:
        log = tmp_path / "job1.log"
        proc = _batch(tmp_path, env, log)
        harness.wait_for(lambda: harness.finished_children(db) >= 2, 400, "2 finished trials", proc=proc, log=log)
        os.kill(proc.pid, signal.SIGTERM)  # what --signal=B:TERM sends: the batch script only
        assert proc.wait(timeout=180) == 130, harness.tail(log)
        text = log.read_text()
        assert "stopping the search resumably" in text and "requeueing job 4242" in text, text[-3000:]
        assert (tmp_path / "requeued").read_text().split() == ["4242"]
        done_before = harness.finished_children(db)
        assert 2 <= done_before < 6

        log2 = tmp_path / "job2.log"  # the requeued job
        proc = _batch(tmp_path, env, log2)
        assert proc.wait(timeout=400) == 0, harness.tail(log2)
        text = " ".join(log2.read_text().split())
        assert "resuming the unfinished search" in text and "6 finished trials, 0 failed" in text, text[-3000:]
    finally:
        harness.kill_env(f"GATESEARCH_TEST_RUN={env['GATESEARCH_TEST_RUN']}")
        for d in Path("/tmp").glob(f"gss-*-{env['GSS_JOB']}"):
            harness.kill_env(f"RAY_TMPDIR={d}")
    tracker = Tracker(f"sqlite:///{db}", "slurm")
    [(parent, _)] = tracker.searches()
    children = tracker.children(parent)
    assert len(children) == 6 and {c.status for c in children} == {"FINISHED"}
    assert len({c.tags["gatesearch.node_id"] for c in children}) >= 2  # trials ran on both "nodes"
    assert tracker.tags(parent)["gatesearch.resumes"] == "1"
    assert (tmp_path / "requeued").read_text().split() == ["4242"]  # the finished job did not requeue
