import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster (2 CPUs, loopback), started once for the session."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install batchlab[ray])")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
