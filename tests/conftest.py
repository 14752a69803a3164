import os
import tempfile

for _k, _v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
               "RAY_AIR_NEW_OUTPUT": "0"}.items():
    os.environ.setdefault(_k, _v)

import pytest
import torch

# one torch thread per process under pytest-xdist (two workers on two cores): with two threads each,
# OpenMP's spinning threads of one worker starve the other's (a 4 s test took 58 s)
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture(scope="session")
def ray_session():
    """One private local Ray instance for the whole session (2 CPUs)."""
    import ray

    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="gsray", dir="/tmp"))
    from gatesearch.search.ray import ensure_ray

    ensure_ray(num_cpus=2)  # the product's own local start-up (loopback only)
    yield ray
    ray.shutdown()


@pytest.fixture
def sqlite_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
