"""The app started the README way, ``./dev up`` with its own data folder on a free port, for the
tests that need it whole (the browser tests, the load test in ``tests/integration/``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mediasearch.embedded import EmbeddedPostgres, free_port
from tests.conftest import REPO_ROOT


@dataclass(frozen=True)
class RunningApp:
    url: str
    admin_password: str
    var: Path
    log: Path

    def database_url(self, database: str = "mediasearch") -> str:
        """The app's embedded PostgreSQL server, to look at from the test."""
        return EmbeddedPostgres.running_url(self.var / "postgres", database)

    def logged_in_session(self) -> requests.Session:
        """A ``requests`` session logged in as admin through the login page."""
        session = OneConnectionPerRequest()
        login = f"{self.url}/accounts/login/"
        session.get(login, timeout=30).raise_for_status()
        response = session.post(
            login,
            data={"username": "admin", "password": self.admin_password,
                  "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": login},
            allow_redirects=False,
            timeout=30,
        )  # fmt: skip
        assert (response.status_code, response.headers.get("Location")) == (302, "/"), (
            f"login failed: {response.status_code}"
        )
        return session


class OneConnectionPerRequest(requests.Session):
    """A session (cookies kept) that opens a new connection for every request.

    A kept-alive connection that the server closes just as it is reused fails in ``requests``
    (browsers retry it): an error of the client's, not the app's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.headers["Connection"] = "close"

    def request(self, *args, **kwargs) -> requests.Response:
        try:
            return super().request(*args, **kwargs)
        finally:
            self.close()  # the connection pools; cookies stay


@contextmanager
def dev_up(var: Path, *args: str, timeout: float = 180, **env: str) -> Iterator[RunningApp]:
    """Run ``./dev up --port <free port> *args`` with its data in ``var``; stop it afterwards.

    ``env`` is added to this process's environment, less the URLs of the test's own services:
    the app starts its own, as ``./dev up`` does on a fresh machine.
    """
    port = free_port()
    log = var / "dev-up.log"
    environment = {
        **os.environ,
        "MEDIASEARCH_VAR_DIR": str(var),
        # The shipped model directly: the fallback would first wait for the hub to time out.
        "MEDIASEARCH_CLIP_MODEL": "MediaSearch-Demo",
        "MEDIASEARCH_CLIP_PRETRAINED": "demo",
        **env,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        environment.pop(name, None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(REPO_ROOT / "dev"), "up", "--port", str(port), *args],
            cwd=REPO_ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while "MediaSearch is running" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"./dev up did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield RunningApp(
            url=f"http://127.0.0.1:{port}",
            admin_password=(var / "admin_password").read_text().strip(),
            var=var,
            log=log,
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
