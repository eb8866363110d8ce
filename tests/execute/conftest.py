from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster (2 CPUs, loopback), started once for the session. Its workers
    import this folder's modules (``fn_train``) as the test process does."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install batchlab[ray])")
    from ray.job_config import JobConfig

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             job_config=JobConfig(code_search_path=[str(Path(__file__).parent)]))
    yield ray
    ray.shutdown()
