"""Workers run below the web server's priority: a person waiting for a page comes first."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# A fresh process, as Celery forks a pool process: the signal handler sets its niceness once.
SCRIPT = (
    "import os, django; django.setup(); "
    "from workers.signals import load_model_in_pool_process; "
    "load_model_in_pool_process(); print(os.getpriority(os.PRIO_PROCESS, 0))"
)


def niceness_after_start(setting: str, *, started_at: int = 0) -> int:
    env = {**os.environ, "MEDIASEARCH_WORKER_NICENESS": setting, "MEDIASEARCH_WARM_UP": "0"}
    command = [sys.executable, "-c", SCRIPT]
    if started_at:
        command = ["nice", "-n", str(started_at), *command]
    output = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert output.returncode == 0, output.stderr
    return int(output.stdout.split()[-1])


# Niceness only goes up without privileges: a test run that is itself niced (0 normally) sets
# the floor for what a worker started from it can reach.
OWN = os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.parametrize(("setting", "expected"), [("10", 10), ("0", 0), ("40", 19)])
def test_a_worker_lowers_its_priority_to_the_setting(setting, expected):
    assert niceness_after_start(setting) == max(OWN, expected)


def test_a_worker_never_raises_its_priority():
    assert niceness_after_start("5", started_at=12) == min(OWN + 12, 19)
