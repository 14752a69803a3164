"""The KubeRay manifests (deploy/kuberay/gatesearch.yaml): every Kubernetes object is valid against
the Kubernetes schemas (kubernetes-validate, offline, strict: an unknown field fails), and the
recipe is safe as the docs say: no secret value committed, credentials by environment (never in a
command line), Ray token auth, NetworkPolicies, MLflow behind basic auth with --allowed-hosts for its
in-cluster name and artifacts on a volume of their own. The RayJob is KubeRay's CRD, whose schema is
not installable offline: its fields are checked one by one. Applying the manifests needs a
Kubernetes cluster with the KubeRay operator, which this machine does not have: never done."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kuberay" / "gatesearch.yaml"
K8S_VERSION = "1.33"


def _all() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _named() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _all()}


def _containers(doc: dict) -> list[dict]:
    if doc["kind"] == "RayJob":
        cluster = doc["spec"]["rayClusterSpec"]
        pods = [cluster["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"]
                                                                for g in cluster["workerGroupSpecs"]]
    else:
        pods = [doc["spec"]["template"]["spec"]]
    return [c for p in pods for c in p["containers"]]


def test_every_kubernetes_object_is_valid_against_the_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    checked = 0
    for doc in _all():
        if doc["apiVersion"].startswith("ray.io/"):
            continue  # KubeRay's CRD: see test_the_rayjob_asks_for_a_token_and_keeps_its_dashboard_local
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 10
    broken = copy.deepcopy(_named()[("Deployment", "mlflow")])
    broken["spec"]["template"]["spec"]["containers"][0]["envv"] = []  # a typo is caught
    with pytest.raises(Exception, match="envv"):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_no_secret_value_is_committed_and_credentials_come_by_environment():
    docs = _all()
    assert not [d for d in docs if d["kind"] == "Secret"], "secrets are created by the documented commands"
    text = MANIFEST.read_text()
    assert "change-me" not in text and "password1234" not in text
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "RayJob"):
            continue
        for c in _containers(doc):
            argv = " ".join([*c.get("command", []), *c.get("args", [])])
            assert "$(" not in argv and "PASSWORD" not in argv.upper(), (doc["metadata"]["name"], argv)
            for e in c.get("env", []):
                if "PASSWORD" in e["name"] or "SECRET" in e["name"] or e["name"] == "PGPASSWORD":
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], e
    job = _named()[("RayJob", "gatesearch")]
    assert not re.search(r"://[^/@\s]+:[^/@\s]+@", job["spec"]["entrypoint"]), "no password in the entrypoint"
    # the documented commands create every secret key the manifests read
    created = set(re.findall(r"--from-literal=(\w+)=", text))
    read = {(e["valueFrom"]["secretKeyRef"]["key"]) for d in docs if d["kind"] in ("Deployment", "StatefulSet",
                                                                                   "RayJob")
            for c in _containers(d) for e in c.get("env", []) if "valueFrom" in e}
    assert read <= created, read - created


def test_the_rayjob_asks_for_a_token_and_keeps_its_dashboard_local():
    job = _named()[("RayJob", "gatesearch")]
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert tuple(int(x) for x in cluster["rayVersion"].split(".")[:2]) >= (2, 52)  # token auth needs Ray 2.52+
    assert cluster["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    assert spec["submissionMode"] == "SidecarMode"  # the submitter reaches the dashboard on the head's loopback
    entry = " ".join(spec["entrypoint"].split())
    assert entry.startswith("gatesearch run /config/space.yaml --address ")
    assert "--tracking-uri http://mlflow:5000" in entry and "--output-dir /shared/gatesearch-runs" in entry
    assert "--optuna-storage postgresql+psycopg://optuna@postgres:5432/optuna" in entry  # the mirror's own role
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:  # every Ray pod sees the search folder at /shared (Ray's storage_path), labelled for the policies
        assert pod["metadata"]["labels"]["app"] == "gatesearch-ray"
        spec_ = pod["spec"]
        mounts = {m["mountPath"]: m["name"] for c in spec_["containers"] for m in c["volumeMounts"]}
        claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in spec_["volumes"]}
        assert claims[mounts["/shared"]] == "gatesearch-shared"
    gpu = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1" and cluster["workerGroupSpecs"][0]["rayStartParams"]["num-gpus"] == "1"


def test_mlflow_has_auth_its_own_volume_and_allows_its_in_cluster_name():
    named = _named()
    mlflow = named[("Deployment", "mlflow")]["spec"]["template"]["spec"]
    [c] = mlflow["containers"]
    args = c["args"]
    assert args[args.index("--app-name") + 1] == "basic-auth"
    hosts = args[args.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow", "mlflow:5000"} <= set(hosts) and "*" not in hosts
    env = {e["name"]: e for e in c["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"] == "postgresql+psycopg://mlflow@postgres:5432/mlflow"
    claims = {v.get("persistentVolumeClaim", {}).get("claimName") for v in mlflow["volumes"]}
    assert "mlflow-artifacts" in claims and "gatesearch-shared" not in claims  # not the pickled search state's volume
    ini = named[("ConfigMap", "mlflow-auth")]["data"]["basic_auth.ini"]
    assert "default_permission = NO_PERMISSIONS" in ini and "/mlflow-artifacts/" in ini
    init = named[("ConfigMap", "gatesearch-db-init")]["data"]["optuna.sh"]
    assert "CREATE ROLE optuna" in init and "\\getenv optuna_password OPTUNA_PASSWORD" in init


def test_network_policies_admit_only_the_pods_that_need_each_service():
    policies = {d["metadata"]["name"]: d["spec"] for d in _all() if d["kind"] == "NetworkPolicy"}
    by_target = {p["podSelector"]["matchLabels"]["app"]: p for p in policies.values()}
    assert set(by_target) == {"postgres", "mlflow", "gatesearch-ray"}
    for p in by_target.values():
        assert p["policyTypes"] == ["Ingress"] and p["ingress"]
    sources = lambda app: [s["podSelector"]["matchLabels"] for rule in by_target[app]["ingress"]  # noqa: E731
                           for s in rule["from"]]
    assert sources("postgres") == [{"app": "mlflow"}, {"app": "gatesearch-ray", "ray.io/node-type": "head"}]
    assert sources("mlflow") == [{"app": "gatesearch-ray"}]
    assert sources("gatesearch-ray") == [{"app": "gatesearch-ray"}]


def test_the_docs_show_the_commands_the_recipes_document():
    """Each recipe's usage lines (its header) are in the docs verbatim, and every deploy/ path the
    docs name exists."""
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
                     if p.exists())
    sbatch = ROOT / "deploy" / "slurm" / "gatesearch.sbatch"
    usage = [*re.findall(r"^#[ \t]+(kubectl \S.*?)(?:[ \t]+#.*)?$", MANIFEST.read_text(), re.M),
             *re.findall(r"^#[ \t]+(sbatch \S.*)$", sbatch.read_text(), re.M)]
    assert len(usage) == 6, usage  # two secrets, configmap, apply, logs; sbatch
    for command in usage:
        assert command.strip() in docs, f"the docs lack: {command}"
    for path in re.findall(r"(?<![\w/])deploy/[\w/.-]+\w", docs):
        assert (ROOT / path).exists(), path
