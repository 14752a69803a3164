"""Run by test_resources.py in a fresh process: a local Ray instance that declares 2 (fake) GPUs;
per-configuration resources (`resources:` by n_experts: 4 experts 0.5 GPU, 16 experts 2 GPUs),
then a configuration no node can hold. Prints one JSON line."""

import json
import sys
from pathlib import Path

import ray

from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.ray import quiet_ray_env
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import parse_space_file

out = Path(sys.argv[1])
quiet_ray_env()
ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
SPACE = """\
name: per-config
objective: moe_digits
search: {searcher: random, num_samples: 8, max_concurrent: 4, seed: 0, cpus_per_trial: 0.5}
fixed: {epochs: 4, gate: topk, k: 1}
resources:
  by: n_experts
  gpus_per_trial: {4: 0.5, 16: GPUS}
params:
  n_experts: {type: categorical, choices: [4, 16]}
  lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
"""
result = run_search(parse_space_file(SPACE.replace("GPUS", "2"), str(out / "gpu.yaml")), output_dir=out / "runs")
tracker = Tracker(result.tracking_uri, "per-config")
runs = [tracker.client.get_run(r.run_id) for r in tracker.children(result.parent_run_id)]
trials = [{"n": int(r.data.params["n_experts"]), "start": r.info.start_time, "end": r.info.end_time,
           "gpu_ids": r.data.tags.get("gatesearch.gpu_ids"), "status": r.info.status} for r in runs]
try:
    run_search(parse_space_file(SPACE.replace("GPUS", "3"), str(out / "big.yaml")), output_dir=out / "big")
    too_big = ""
except ValueError as e:
    too_big = str(e)
print(json.dumps({"trials": trials, "too_big": too_big, "big_dir_written": (out / "big").exists()}))
ray.shutdown()
