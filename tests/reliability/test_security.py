"""Security defaults: the embedded Ray instance listens on loopback only; nothing we load
is unpickled from an untrusted place (torch.load always with weights_only=True)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests import harness

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

PROBE = """
import json, os
from gatesearch.search.ray import ensure_ray, shutdown_ray
from tests.harness import listening_addresses, pids_with_env
ensure_ray(num_cpus=1)
import ray
ray.get(ray.remote(lambda: 1).remote())  # a worker is up too
pids = [os.getpid(), *pids_with_env("RAY_TMPDIR=" + os.environ["RAY_TMPDIR"])]
print(json.dumps({"nodes": [n["NodeManagerAddress"] for n in ray.nodes()], "listen": listening_addresses(pids)}))
shutdown_ray()
"""


def test_embedded_ray_binds_loopback_only(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=180, cwd=ROOT,
                         env=harness.env())
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["nodes"] == ["127.0.0.1"]
    assert len(report["listen"]) >= 3  # gcs, raylet, worker at least: the probe saw the servers
    exposed = [entry for entry in report["listen"] if entry[1] not in LOOPBACK]
    assert not exposed, f"listening beyond loopback: {exposed}"


def _calls(tree: ast.AST, name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            full = f"{getattr(f.value, 'id', '')}.{f.attr}" if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if full == name:
                yield node


def test_no_unsafe_deserialisation_in_our_code():
    files = [p for d in ("models", "objectives", "spaces", "search", "bench") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 20
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree, "torch.load"):
            kw = {k.arg: k.value for k in call.keywords}
            assert "weights_only" in kw and getattr(kw["weights_only"], "value", None) is True, \
                f"{path}:{call.lineno}: torch.load without weights_only=True"
        for name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
            assert not list(_calls(tree, name)), f"{path}: {name} (use yaml.safe_load)"
        # pickle.load only for the searcher checkpoint we wrote ourselves, inside Ray's experiment dir
        for call in _calls(tree, "pickle.load"):
            assert path.as_posix().endswith("search/ray/searcher.py"), \
                f"{path}:{call.lineno}: pickle.load outside the searcher checkpoint"
