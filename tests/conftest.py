import os
import secrets
import tempfile

# Every Ray cluster the tests start (the in-process instance, the CLI's, `ray start` nodes) asks for
# a token: one per test session, in the environment only (inherited by the processes they start)
for _k, _v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
               "RAY_AIR_NEW_OUTPUT": "0"}.items():
    os.environ.setdefault(_k, _v)

WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:
    # two test workers on two cores: one torch/OpenMP thread per process (with two each, the spinning
    # threads of one worker starved the other's: a 4 s test took 58 s), inherited by every process a
    # test starts; and a Ray temp dir of each worker's own (two sessions in one confused Ray)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix=f"gs{WORKER}", dir="/tmp")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests import harness  # noqa: E402,F401 - sets the Ray start lock for the xdist workers

torch.set_num_threads(1 if WORKER else 2)


@pytest.fixture(scope="session")
def ray_session():
    """One private local Ray instance for the whole session (2 CPUs)."""
    import ray

    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="gsray", dir="/tmp"))
    from gatesearch.search.ray import ensure_ray

    ensure_ray(num_cpus=2)  # the product's own local start-up (loopback only; one start at a time: harness)
    yield ray
    ray.shutdown()


@pytest.fixture
def sqlite_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
