"""Run by test_resources.py in a fresh process: a local Ray instance that declares 2
(fake) GPUs, 4 trials of 1 GPU each with max_concurrent 4. Prints one JSON line."""

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
text = """\
name: gpu
objective: moe_digits
search: {searcher: random, num_samples: 4, max_concurrent: 4, seed: 0, gpus_per_trial: 1, cpus_per_trial: 1}
fixed: {epochs: 6, gate: topk}
params:
  n_experts: {type: int, low: 4, high: 8}
"""
result = run_search(parse_space_file(text, str(out / "gpu.yaml")), output_dir=out / "runs")
tracker = Tracker(result.tracking_uri, "gpu")
runs = [tracker.client.get_run(r.run_id) for r in tracker.children(result.parent_run_id)]
spans = [(r.info.start_time, r.info.end_time) for r in runs]
max_overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
print(json.dumps({"n": len(runs), "status": [r.info.status for r in runs], "max_overlap": max_overlap,
                  "gpu_ids": [r.data.tags.get("gatesearch.gpu_ids") for r in runs],
                  "device": [r.data.tags.get("gatesearch.device") for r in runs]}))
ray.shutdown()
