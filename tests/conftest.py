import os
import tempfile

for _k, _v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AIR_NEW_OUTPUT": "0"}.items():
    os.environ.setdefault(_k, _v)

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def ray_session():
    """One private local Ray instance for the whole session (2 CPUs)."""
    import ray

    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="gsray", dir="/tmp"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def sqlite_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
