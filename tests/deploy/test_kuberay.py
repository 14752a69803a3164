"""The KubeRay manifests (deploy/kuberay/gatesearch.yaml) parse, hold what the README says they do,
and run the commands the README shows. (Applying them needs a Kubernetes cluster with the KubeRay
operator, which this machine does not have.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kuberay" / "gatesearch.yaml"


def _docs() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}


def test_the_manifests_parse_and_hold_a_rayjob_a_tracking_server_on_postgresql_and_shared_storage():
    docs = _docs()
    assert {"RayJob", "Deployment", "StatefulSet", "Service", "PersistentVolumeClaim", "Secret"} <= set(docs)
    job = docs["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    entry = " ".join(job["spec"]["entrypoint"].split())
    assert entry.startswith("gatesearch run /config/space.yaml --address ")
    assert "--tracking-uri http://mlflow:5000" in entry and "--output-dir /shared/gatesearch-runs" in entry
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:  # every Ray pod sees the search folder at /shared (Ray's storage_path)
        mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c["volumeMounts"]}
        claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
        assert claims[mounts["/shared"]] == "gatesearch-shared"
        assert all(c["image"] for c in pod["containers"])
    assert docs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    gpu = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1" and cluster["workerGroupSpecs"][0]["rayStartParams"]["num-gpus"] == "1"
    server = " ".join(docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"][0].split())
    assert "mlflow server" in server and "--backend-store-uri postgresql+psycopg://" in server


def test_the_readme_shows_the_commands_the_recipes_document():
    """Each recipe's usage lines (its header) are in the README verbatim, and every deploy/ path the
    README names exists."""
    text = (ROOT / "README.md").read_text()
    sbatch = ROOT / "deploy" / "slurm" / "gatesearch.sbatch"
    usage = [*re.findall(r"^#[ \t]+(kubectl \S.*?)(?:[ \t]+#.*)?$", MANIFEST.read_text(), re.M),
             *re.findall(r"^#[ \t]+(sbatch \S.*)$", sbatch.read_text(), re.M)]
    assert len(usage) == 4, usage  # configmap, apply, logs; sbatch
    for command in usage:
        assert command.strip() in text, f"README lacks: {command}"
    for path in re.findall(r"(?<![\w/])deploy/[\w/.-]+\w", text):
        assert (ROOT / path).exists(), path
