"""How many torch threads a process runs its model on: one per web process, cores for workers."""

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT
from workers.active_engine import use_torch_threads
from workers.signals import load_model_in_pool_process


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    use_torch_threads(before)


def test_a_web_process_encodes_queries_on_one_thread():
    # A fresh process, as gunicorn starts one: the first engine load sets the thread count.
    script = (
        "import django, torch; django.setup(); "
        "from workers.active_engine import get_engine; "
        "before = torch.get_num_threads(); get_engine().encode_texts(['a red circle']); "
        "print(before, torch.get_num_threads())"
    )
    env = {**os.environ, "MEDIASEARCH_TORCH_THREADS": "1", "OMP_NUM_THREADS": "2"}
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert output.returncode == 0, output.stderr
    assert output.stdout.split() == ["2", "1"]


def test_a_worker_process_runs_on_its_own_thread_count(settings, restore_threads):
    use_torch_threads(1)
    settings.MEDIASEARCH_WORKER_TORCH_THREADS = 2
    settings.MEDIASEARCH_WARM_UP = False
    settings.MEDIASEARCH_WORKER_NICENESS = 0  # this test process must keep its priority

    load_model_in_pool_process()

    assert torch.get_num_threads() == 2


def test_zero_threads_means_one_per_core_whatever_was_set_before(restore_threads):
    use_torch_threads(1)

    use_torch_threads(0)

    assert torch.get_num_threads() == len(os.sched_getaffinity(0))
