"""The app spread over several "hosts" on this machine, for the tests of issue 18: services of
its own (an embedded PostgreSQL and Redis that may listen on a link's address too), gunicorn web
servers started from the outside, and network namespaces joined to this one by a veth link.

Nothing here is a stand-in: the servers are the real ones, the web servers are gunicorn as in
production, the namespace is the kernel's (``ip netns``, as root).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mediasearch.devstack import REPO_ROOT
from mediasearch.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, wait_for_port


@dataclass
class Stack:
    """PostgreSQL and Redis of its own under ``root``, the app's database migrated, and the
    processes started on them (stopped by ``close``)."""

    root: Path
    listen_address: str | None = None  # besides loopback: a link's address (remote hosts)
    trust: str | None = None  # the address let in over TCP without a password
    database_url: str = ""  # for processes on this host (unix socket)
    tcp_database_url: str = ""  # over the link, when listen_address is given
    redis_url: str = ""
    link_redis_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    _postgres: EmbeddedPostgres | None = None
    _redis: EmbeddedRedis | None = None
    _processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> Stack:
        self.media_root.mkdir(parents=True, exist_ok=True)
        self._postgres = EmbeddedPostgres(self.root / "postgres")
        self._postgres.start()
        self._postgres.create_database("mediasearch")
        self.database_url = self._postgres.url("mediasearch")
        bind = ("127.0.0.1",)
        if self.listen_address:
            tcp = self._postgres.listen_on(self.listen_address, trust=self.trust or "")
            self.tcp_database_url = f"{tcp}/mediasearch"
            bind = ("127.0.0.1", self.listen_address)
        self._redis = EmbeddedRedis(
            self.root / "redis", append_only=False, bind=bind, password=secrets.token_hex(8)
        )
        self._redis.start()
        self.redis_url = self._redis.url
        if self.listen_address:
            self.link_redis_url = self._redis.url_at(self.listen_address)
        self.manage("migrate", "--no-input", "-v", "0")
        return self

    def environment(self, **extra: str) -> dict[str, str]:
        """The environment of an app process on this host: the test settings (rate limits
        off, plain-http cookies) on this stack's services."""
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mediasearch.settings.test",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MEDIASEARCH_VAR_DIR": str(self.root / "web-var"),
            "MEDIASEARCH_MEDIA_ROOT": str(self.media_root),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
            **extra,
        }

    @property
    def media_root(self) -> Path:
        return self.root / "web-media"

    def manage(self, *args: str, **extra_env: str) -> str:
        """Run a manage.py command; return what it printed on stdout."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.environment(**extra_env),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def users(self, *users: tuple[str, str, bool]) -> dict[str, str]:
        """Create (username, password, staff) users in one manage.py run; return an API token
        of each, by username."""
        script = (
            "from django.contrib.auth import get_user_model\n"
            "from search.accounts.services import api_token_create\n"
            f"for name, password, staff in {list(users)!r}:\n"
            "    user = get_user_model().objects.create_user(\n"
            "        name, password=password, is_staff=staff, is_superuser=staff)\n"
            "    print('token', name, api_token_create(user=user, name='test')[1])\n"
        )
        out = self.manage("shell", "-c", script)
        tokens = {
            words[1]: words[2]
            for words in (line.split() for line in out.splitlines())
            if len(words) == 3 and words[0] == "token"
        }
        if set(tokens) != {name for name, _, _ in users}:
            raise RuntimeError(f"users not made: {out[-2000:]}")
        return tokens

    def web(self, *, processes: int = 1, threads: int = 4, **extra_env: str) -> str:
        """A gunicorn web server on a free loopback port; returns its base URL once it answers
        its health check."""
        port = free_port()
        log = (self.root / f"web-{port}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mediasearch.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(processes), "--threads", str(threads), "--timeout", "120",
             "--graceful-timeout", "5", "--no-control-socket"],
            cwd=REPO_ROOT, env=self.environment(**extra_env), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._processes.append(process)
        wait_for_port("127.0.0.1", port, 60, process=process, name="gunicorn")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} is not healthy:\n{self.log(f'web-{port}')[-3000:]}")
            time.sleep(0.2)
        return url

    def spawn(self, args: list[str], *, log_name: str, env: dict[str, str]) -> subprocess.Popen:
        log = (self.root / f"{log_name}.log").open("ab")
        process = subprocess.Popen(
            args, cwd=env.get("_CWD", REPO_ROOT), env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._processes.append(process)
        return process

    def log(self, log_name: str) -> str:
        path = self.root / f"{log_name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def backends(self) -> int:
        """Connections to the app's database now (from pg_stat_activity; not this query's)."""
        import psycopg

        with psycopg.connect(self._postgres.url("postgres")) as conn:  # type: ignore[union-attr]
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'mediasearch'"
            ).fetchone()
        return int(row[0]) if row else 0

    def max_connections(self) -> int:
        import psycopg

        with psycopg.connect(self._postgres.url("postgres")) as conn:  # type: ignore[union-attr]
            row = conn.execute("SHOW max_connections").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._redis is not None:
            self._redis.stop()
        if self._postgres is not None:
            if self.listen_address:
                self._postgres.pause()  # the server restarted on the link: not the handle's
            self._postgres.stop()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=30).status_code == 200
    except requests.RequestException:  # still loading the model, on a busy machine
        return False


@contextmanager
def stack(**options) -> Iterator[Stack]:
    """A started ``Stack`` in a folder of its own, removed afterwards. Not under pytest's
    tmp_path: PostgreSQL runs as another user, and every pytest that starts on this machine
    makes pytest's folder root's alone again (0700)."""
    root = Path(tempfile.mkdtemp(prefix="mediasearch-hosts-"))
    running = Stack(root, **options)
    try:
        yield running.start()
    finally:
        try:
            running.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def namespaces_unavailable() -> str | None:
    """Why a network namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "the ip and unshare commands (iproute2, util-linux) are not installed"
    probe = f"msprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], check=False)
    return None


@dataclass
class Namespace:
    """A network namespace with only loopback and a veth link to this one: the host side has
    ``host_address``, the namespace ``address`` (a /30 of 10.213.0.0/16 chosen by pid, so that
    parallel runs on one machine do not collide)."""

    name: str
    host_if: str
    inner_if: str
    host_address: str
    address: str

    @classmethod
    def create(cls) -> Namespace:
        n = os.getpid() % 16000
        tag = f"{os.getpid() % 100000}"
        ns = cls(
            name=f"mshost{tag}",
            host_if=f"msh{tag}",
            inner_if=f"msw{tag}",
            host_address=f"10.213.{n // 64}.{(n % 64) * 4 + 1}",
            address=f"10.213.{n // 64}.{(n % 64) * 4 + 2}",
        )
        ns.delete()  # left over by a run that was killed
        for command in (
            f"ip netns add {ns.name}",
            f"ip link add {ns.host_if} type veth peer name {ns.inner_if}",
            f"ip link set {ns.inner_if} netns {ns.name}",
            f"ip addr add {ns.host_address}/30 dev {ns.host_if}",
            f"ip link set {ns.host_if} up",
            f"ip netns exec {ns.name} ip addr add {ns.address}/30 dev {ns.inner_if}",
            f"ip netns exec {ns.name} ip link set {ns.inner_if} up",
            f"ip netns exec {ns.name} ip link set lo up",
        ):
            subprocess.run(command.split(), check=True, capture_output=True)
        return ns

    def run(self, *command: str) -> list[str]:
        """``command`` as run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def link_down(self) -> None:
        subprocess.run(["ip", "link", "set", self.host_if, "down"], check=True)

    def link_up(self) -> None:
        subprocess.run(["ip", "link", "set", self.host_if, "up"], check=True)

    def delete(self) -> None:
        subprocess.run(["ip", "link", "delete", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
