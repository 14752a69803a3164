"""One command for a GPU machine (``make gpu-check``): every CUDA path of gatesearch, in one go.

A GPU may be lent only briefly (about 15 minutes in all, every try included), so this runs each
check with its own time limit, keeps going when one fails, and ends within about 8 minutes on one
GPU with one table (the device's name on top), printed and written to
``bench/results/gpu_check[_<device>].md``:

1. the device: name, compute capability, memory, bf16 support;
2. every objective family for a few steps on the device (MoE classification, EvoMoE, the MLP and
   ViT early exits, the transformer LM and EvoMoE LM: the LM's bf16 autocast path), finite metrics;
3. bf16 autocast against fp32 on the transformer (logits and loss close);
4. the MoE layer benchmark (``bench/moe_layer.py``), with its grouped-GEMM column
   (``torch._grouped_mm``, CUDA only);
5. the transformer benchmark (``bench/transformer.py``) at a GPU size;
6. 4 trials at 0.25 GPU packed on one device through ``gatesearch run`` (all four on the device
   at once).

Without a CUDA GPU it says so and exits 0 at once. ``--device cpu`` runs the same checks on the CPU
at tiny sizes (the CUDA-only grouped GEMM is reported as skipped; the packing check declares one
fake GPU to Ray): how the script itself is tested.

    python scripts/gpu_check.py [--device cuda|cpu] [--budget-s 480]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: each check's share of the time limit (seconds at the default 480 s budget)
LIMITS = {"objectives": 150, "autocast": 30, "moe_layer": 90, "transformer": 90, "packing": 120}


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _run(code: str, timeout: float, env: dict | None = None) -> tuple[bool, str, float]:
    """Run ``code`` in a fresh Python (a crash or hang of one check cannot take the others down)."""
    t0 = time.time()
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s", time.time() - t0
    out = (done.stdout + done.stderr).strip()
    return done.returncode == 0, out, time.time() - t0


def _nvidia_present() -> bool:
    import shutil

    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def _last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}


OBJECTIVES = """
import json, math, sys, time, torch
from gatesearch.objectives import get_objective
from gatesearch.objectives.data import DataMissing
device, tiny = sys.argv[1], sys.argv[2] == "tiny"
lm = {"epochs": 1, "steps_per_epoch": 5 if tiny else 30, "batch_size": 8 if tiny else 64, "eval_tokens": 1024,
      "k_sweep": False}
cases = [("moe_digits", {"epochs": 1, "gate": "topk"}), ("evomoe_digits", {"epochs": 2, "share_epochs": 1}),
         ("early_exit_digits", {"epochs": 2, "warmup_epochs": 1}),
         ("early_exit_vit_fashion", {"epochs": 1, "warmup_epochs": 1, "batch_size": 256}),
         ("moe_lm_shakespeare", dict(lm)), ("evomoe_lm_shakespeare", {**lm, "epochs": 2, "share_epochs": 1})]
rows = []
for name, config in cases:
    t0 = time.time()
    try:
        objective = get_objective(name)
        out = objective.run(config, device=device)
        metrics = {m.name: out.get(m.name) for m in objective.objectives}
        ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in metrics.values())
        rows.append({"objective": name, "ok": ok, "s": round(time.time() - t0, 1), **metrics})
    except DataMissing as e:
        rows.append({"objective": name, "ok": None, "s": 0.0, "note": "data missing: run make data"})
    except Exception as e:
        rows.append({"objective": name, "ok": False, "s": round(time.time() - t0, 1),
                     "note": f"{type(e).__name__}: {e}"[:200]})
mem = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
print(json.dumps({"rows": rows, "max_mem_mib": mem}))
"""

AUTOCAST = """
import json, sys, torch
import torch.nn.functional as F
from gatesearch.models.transformer import MoETransformerConfig, MoETransformerLM
from gatesearch.models.gates.topk_config import TopKGateConfig
device = sys.argv[1]
torch.manual_seed(0)
model = MoETransformerLM(MoETransformerConfig(vocab=84, context=128, n_layers=4, d_head=32, n_heads=4, n_experts=8,
                                              gate=TopKGateConfig(k=2))).to(device).eval()
x = torch.randint(0, 84, (8, 128), device=device)
with torch.no_grad():
    ref = model(x, step=0).logits.float()
    if device == "cuda" and torch.cuda.is_bf16_supported():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(x, step=0).logits.float()
        kind = "bf16"
    else:
        low, kind = ref, "none (no bf16 on this device)"
y = torch.randint(0, 84, (8 * 128,), device=device)
l_ref, l_low = F.cross_entropy(ref.reshape(-1, 84), y).item(), F.cross_entropy(low.reshape(-1, 84), y).item()
same = (ref.argmax(-1) == low.argmax(-1)).float().mean().item()
print(json.dumps({"autocast": kind, "loss_fp32": l_ref, "loss_autocast": l_low, "argmax_agreement": same,
                  "ok": abs(l_ref - l_low) < 0.05 and same > 0.95}))
"""

PACKING = """
import json, sys, tempfile
from pathlib import Path
import ray
from gatesearch.search.ray import quiet_ray_env
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import parse_space_file
device = sys.argv[1]
quiet_ray_env()
# one GPU (a fake one on the CPU dry run): 4 trials of 0.25 GPU must all fit on it at once
ray.init(address="local", num_cpus=4, num_gpus=None if device == "cuda" else 1, include_dashboard=False,
         logging_level="ERROR", log_to_driver=False)
out = Path(tempfile.mkdtemp(prefix="gs-gpu"))
text = '''\\
name: gpu-packing
objective: moe_digits
search: {searcher: random, num_samples: 4, max_concurrent: 4, seed: 0, gpus_per_trial: 0.25, cpus_per_trial: 1}
fixed: {epochs: 3, gate: topk, expert_hidden: 256}
params:
  n_experts: {type: int, low: 4, high: 16}
'''
result = run_search(parse_space_file(text, str(out / "gpu.yaml")), output_dir=out / "runs")
tracker = Tracker(result.tracking_uri, "gpu-packing")
runs = [tracker.client.get_run(r.run_id) for r in tracker.children(result.parent_run_id)]
spans = [(r.info.start_time, r.info.end_time) for r in runs]
overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
print(json.dumps({"n": len(runs), "finished": sum(r.info.status == "FINISHED" for r in runs), "max_overlap": overlap,
                  "gpu_ids": sorted({r.data.tags.get("gatesearch.gpu_ids") for r in runs}),
                  "devices": sorted({r.data.tags.get("gatesearch.device") for r in runs})}))
ray.shutdown()
"""


def device_row(device: str) -> tuple[str, list[str]]:
    import torch

    if device != "cuda":
        return f"CPU dry run ({platform.processor() or platform.machine()}, torch {torch.__version__})", []
    p = torch.cuda.get_device_properties(0)
    name = torch.cuda.get_device_name(0)
    return (f"{name} (compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, "
            f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}; torch {torch.__version__}, CUDA "
            f"{torch.version.cuda})", [])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--budget-s", type=float, default=480.0, help="time limit for all checks together")
    args = ap.parse_args()
    if args.device == "cuda" and not _cuda_available():
        if _nvidia_present():  # a GPU, but this Python's torch cannot use it (e.g. the CPU wheel)
            print(f"gpu-check: an NVIDIA GPU is here but {sys.executable}'s torch cannot use it "
                  f"(torch.cuda.is_available() is False): run it with a CUDA build of torch, e.g. "
                  f"`make gpu-check PY=python3` with the machine's own Python")
            return 2
        print("gpu-check: no CUDA GPU on this machine (torch.cuda.is_available() is False): nothing to check. "
              "Run it on a GPU machine, or `python scripts/gpu_check.py --device cpu` for a dry run.")
        return 0
    t_start = time.time()
    scale = args.budget_s / sum(LIMITS.values())
    device, tiny = args.device, args.device == "cpu"
    title, _ = device_row(device)
    rows: list[tuple[str, str, float, str]] = []  # check, status, seconds, details

    def left(name: str) -> float:
        return max(10.0, min(LIMITS[name] * scale, args.budget_s - (time.time() - t_start)))

    _, out, s = _run(OBJECTIVES.replace("sys.argv[1], sys.argv[2]", f"{device!r}, {'tiny' if tiny else 'full'!r}"),
                      left("objectives"))
    data = _last_json(out)
    for r in data.get("rows", []):
        status = "skipped" if r["ok"] is None else ("ok" if r["ok"] else "FAILED")
        detail = r.get("note") or ", ".join(f"{k} {v:.4g}" for k, v in r.items()
                                             if k not in ("objective", "ok", "s") and isinstance(v, (int, float)))
        rows.append((f"objective {r['objective']} on {device}", status, r["s"], detail))
    if not data:
        rows.append((f"objectives on {device}", "FAILED", s, out[-300:]))
    elif device == "cuda":
        rows.append(("peak GPU memory of the objectives", "ok", 0.0, f"{data.get('max_mem_mib', 0):,.0f} MiB"))

    ok, out, s = _run(AUTOCAST.replace("sys.argv[1]", repr(device)), left("autocast"))
    a = _last_json(out)
    rows.append(("transformer under autocast vs fp32", "ok" if a.get("ok") else "FAILED", s,
                 f"{a.get('autocast')}: loss {a.get('loss_fp32', float('nan')):.4f} vs "
                 f"{a.get('loss_autocast', float('nan')):.4f}, argmax agreement {a.get('argmax_agreement', 0):.3f}"
                 if a else out[-300:]))

    tmp = Path(tempfile.mkdtemp(prefix="gs-gpu-check"))
    layer_args = ["--batch", "256", "--d", "32", "--hidden", "64", "--reps", "2"] if tiny else ["--reps", "5"]
    ok, out, s = _run("import runpy, sys; sys.argv = " + repr(["bench/moe_layer.py", "--device", device,
                                                                 "--out", str(tmp / "moe_layer.md"), *layer_args])
                      + "; runpy.run_path('bench/moe_layer.py', run_name='__main__')", left("moe_layer"))
    table = (tmp / "moe_layer.md").read_text() if (tmp / "moe_layer.md").exists() else ""
    ggemm = "grouped GEMM bf16" in table
    rows.append(("MoE layer benchmark (bench/moe_layer.py)", "ok" if ok and table else "FAILED", s,
                 ("grouped-GEMM column present" if ggemm else
                  "grouped GEMM: skipped (CUDA only)" if device != "cuda" else "grouped GEMM: NOT available here")
                 if ok else out[-300:]))
    if device == "cuda" and ok and not ggemm:
        rows[-1] = (rows[-1][0], "FAILED", s, rows[-1][3] + " (torch._grouped_mm missing or unsupported)")

    size = ["--d", "64", "--layers", "2", "--context", "32", "--batch", "4", "--reps", "1"] if tiny else \
        ["--d", "512", "--layers", "8", "--context", "256", "--batch", "16", "--reps", "3"]
    ok, out, s = _run("import runpy, sys; sys.argv = " + repr(["bench/transformer.py", "--device", device, *size])
                      + "; runpy.run_path('bench/transformer.py', run_name='__main__')", left("transformer"))
    lm_table = out.split("MoEFeedForward alone")[0]  # the LM's table, not the layer's
    speeds = re.findall(r"^\| ([a-z][^|]*?) \| ([\d,.]+) \| ([\d,.]+) \|", lm_table, re.M)
    rows.append(("transformer benchmark (bench/transformer.py)", "ok" if ok else "FAILED", s,
                 "; ".join(f"{g.strip()}: train {t} / inference {i} tokens/s" for g, t, i in speeds[:3])
                 if ok else out[-300:]))

    missing = [m for m in ("ray", "mlflow", "optuna", "moocore") if importlib.util.find_spec(m) is None]
    if missing:  # e.g. a GPU image without network: the search stack is not there
        rows.append(("4 trials at 0.25 GPU through gatesearch run", "skipped", 0.0,
                     f"{', '.join(missing)} not installed for {sys.executable} (pip install -e . brings them)"))
    else:
        ok, out, s = _run(PACKING.replace("sys.argv[1]", repr(device)), left("packing"),
                          env={"RAY_TMPDIR": tempfile.mkdtemp(prefix="gsg", dir="/tmp")})
        p = _last_json(out)
        packed = p.get("finished") == 4 and p.get("max_overlap") == 4 and p.get("devices") == [device]
        rows.append(("4 trials at 0.25 GPU through gatesearch run", "ok" if packed else "FAILED", s,
                     f"{p.get('finished')}/4 finished, {p.get('max_overlap')} at once, devices {p.get('devices')}, "
                     f"GPU ids {p.get('gpu_ids')}" if p else out[-300:]))

    failed = sum(1 for r in rows if r[1] == "FAILED")
    lines = [f"gpu-check: {title}", f"{time.strftime('%Y-%m-%d %H:%M')}, {time.time() - t_start:.0f} s in all, "
             f"{failed} failed", "", "| check | status | s | details |", "|---|---|---|---|"]
    lines += [f"| {c} | {st} | {s:.1f} | {d.replace('|', '/')} |" for c, st, s, d in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_file = RESULTS / ("gpu_check.md" if device == "cuda" else "gpu_check_cpu_dry_run.md")
    out_file.write_text(text)
    print(f"written to {out_file}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
