import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Probe tests run on one torch thread (steady timings, no oversubscription), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
