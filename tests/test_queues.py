"""The table of queues (mediasearch/settings/queues.py) is what Celery routes by, what ./dev up
starts workers for, and what docker-compose.yml runs: every queue has a worker, every task a
queue, and nothing takes from a queue that does not exist."""

from __future__ import annotations

import shlex

import yaml
from django.conf import settings

from mediasearch.celery import app
from mediasearch.devstack import DEV_WORKER_PROCESSES, REPO_ROOT, dev_workers
from workers import task_names


def compose_workers() -> dict[str, list[str]]:
    """The queues each docker-compose service running ``celery worker`` takes (``-Q``)."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    workers = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        command = shlex.split(command) if isinstance(command, str) else command
        if command[:4] == ["celery", "-A", "mediasearch", "worker"]:
            workers[name] = command[command.index("-Q") + 1].split(",")
    return workers


def test_every_task_is_routed_to_a_queue_of_the_table():
    import workers.tasks  # noqa: F401  (registers the tasks)

    names = {getattr(task_names, n) for n in dir(task_names) if n.isupper()}
    assert names <= set(app.tasks)
    routed = {
        task: queue for queue, spec in settings.MEDIASEARCH_QUEUES.items() for task in spec["tasks"]
    }
    assert set(routed) == names  # each task named once, in one queue
    for task, queue in routed.items():
        assert app.amqp.router.route({}, task)["queue"].name == queue


def test_docker_compose_runs_a_cpu_worker_per_queue_and_a_gpu_one_for_photos():
    workers = compose_workers()
    cpu = {name: queues for name, queues in workers.items() if name != "worker-gpu"}
    assert sorted(q for queues in cpu.values() for q in queues) == sorted(
        settings.MEDIASEARCH_QUEUES
    )
    assert all(len(queues) == 1 for queues in cpu.values())  # scaled one kind at a time
    assert workers["worker-gpu"] == [settings.EMBEDDING_QUEUE]
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    gpu = compose["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert gpu["environment"]["MEDIASEARCH_CLIP_DEVICE"] == "cuda"


def test_dev_up_takes_every_queue_with_one_process_for_the_light_ones():
    taken = dev_workers()
    assert sorted(q for queues in taken.values() for q in queues) == sorted(
        settings.MEDIASEARCH_QUEUES
    )
    # photos (with the light queues) and videos, on a 2-core server: what the connection bound
    # of ./dev up counts
    assert len(taken) == DEV_WORKER_PROCESSES == 3
    assert settings.MAINTENANCE_QUEUE in taken["worker"]
    assert taken["video-worker"] == [settings.VIDEO_QUEUE]


def test_dev_up_reads_the_table_before_any_service_url_is_set():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    code = "from mediasearch.devstack import dev_workers; print(dev_workers())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "'video-worker': ['video']" in done.stdout
