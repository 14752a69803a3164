import os
import tempfile

for _k, _v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
               "RAY_AIR_NEW_OUTPUT": "0"}.items():
    os.environ.setdefault(_k, _v)

import pytest
import torch

torch.set_num_threads(2)


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
