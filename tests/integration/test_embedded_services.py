"""The embedded Redis that the fault tests crash: ``kill()`` really stops it, also when this
process only attached to a server another process started (a second test run, ``./dev up``)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from mediasearch.embedded import EmbeddedRedis, EmbeddedServiceError, _is_redis_server
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

# Another process owns the server, as a second test run or ./dev up would.
OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mediasearch.embedded import EmbeddedRedis
    EmbeddedRedis(Path(sys.argv[1]), append_only=False).start()
    print("ready", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def server_of_another_process(tmp_path):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "redis")],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    server = None
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "ready\n"
        server = json.loads((tmp_path / "redis" / "server.json").read_text())["pid"]
        yield tmp_path / "redis"
    finally:
        owner.kill()
        owner.wait()
        # Its server runs in a session of its own: stop it too when a test left it running.
        if server is not None and _is_redis_server(server):
            os.kill(server, signal.SIGKILL)


def test_kill_stops_a_server_that_another_process_started(server_of_another_process):
    attached = EmbeddedRedis(server_of_another_process, append_only=False)
    attached.start()
    assert attached._process is None  # attached, not started
    client = Redis.from_url(attached.url, socket_connect_timeout=1)
    assert client.ping()

    attached.kill()

    with pytest.raises(RedisConnectionError):
        client.ping()
    assert not (server_of_another_process / "server.json").exists()
    attached.start()  # a fresh server of its own, on the same port
    try:
        assert attached._process is not None
        assert client.ping()
    finally:
        attached.stop()


def test_kill_without_a_server_says_so(tmp_path):
    with pytest.raises(EmbeddedServiceError, match=r"no Redis server of .* to kill"):
        EmbeddedRedis(tmp_path / "redis").kill()
