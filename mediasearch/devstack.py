"""``./dev up``: the whole app on one machine, with nothing installed system-wide.

Starts the embedded PostgreSQL (pgvector) and Redis, migrates, makes sure an admin exists,
then runs the web server (gunicorn, as in production), a Celery worker and Celery beat, and
stops all of it on Ctrl-C. Data lives under ``var/`` and is reused by the next run. Production
runs the same processes from docker-compose.yml against real services instead.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from mediasearch.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedS3, wait_for_port
from mediasearch.settings.environment import env_bool, env_int

REPO_ROOT = Path(__file__).resolve().parents[1]

# The web server: gunicorn with a fixed set of processes and threads, as the Dockerfile runs it.
# Each thread keeps at most one database connection (CONN_MAX_AGE), so their number is bounded.
# Django's runserver starts a thread per request instead, each with a connection of its own:
# kept for CONN_MAX_AGE, they ran the embedded server out of connections (issue 14), so
# ``--reload`` runs it without persistent connections.
WEB_PROCESSES = env_int("MEDIASEARCH_WEB_PROCESSES", 2)
WEB_THREADS = env_int("MEDIASEARCH_WEB_THREADS", 4)
# PostgreSQL connections that web, worker and beat hold at most, together: one per web thread,
# and one more per web process while it loads the model at start (2 x (4 + 1) = 10); each of the
# three workers (photos with the light queues, videos, OCR: ``dev_workers``) two while a
# task runs (its pool process, and the thread that renews its claim's lease; the parent
# none); beat none. 16 by default, plus one per running ``./dev manage`` command, of the
# embedded server's 100 (max_connections).
DEV_WORKER_PROCESSES = 3
DATABASE_CONNECTIONS_AT_MOST = WEB_PROCESSES * (WEB_THREADS + 1) + DEV_WORKER_PROCESSES * 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["manage"]:
        return manage(argv[1:])
    return up(argv)


def manage(args: list[str]) -> int:
    """Run a manage.py command against the embedded services (shared with a running ./dev up)."""
    var = var_dir()
    postgres = EmbeddedPostgres(var / "postgres")
    redis = EmbeddedRedis(var / "redis")
    try:
        postgres.start()
        postgres.create_database("mediasearch")
        redis.start()
        env = app_environment(var, postgres.url("mediasearch"), redis.url)
        return subprocess.call([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env)
    finally:
        redis.stop()
        postgres.stop()


def var_dir() -> Path:
    var = Path(os.environ.get("MEDIASEARCH_VAR_DIR", REPO_ROOT / "var")).resolve()
    var.mkdir(parents=True, exist_ok=True)
    return var


def up(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./dev up", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MEDIASEARCH_PORT", 8000)))
    parser.add_argument("--host", default=os.environ.get("MEDIASEARCH_HOST", "127.0.0.1"))
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also upload a few hundred generated demo scenes for the admin user to search",
    )
    parser.add_argument(
        "--s3",
        action="store_true",
        help="keep every file in S3: an embedded SeaweedFS server in var/s3, bucket "
        "'mediasearch' (MEDIASEARCH_STORAGE=s3), instead of var/media",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="for working on the code: Django's development server, which restarts on every "
        "change and shows debug pages (DJANGO_DEBUG=0 turns those off), instead of gunicorn",
    )
    args = parser.parse_args(argv)

    var = var_dir()
    postgres = EmbeddedPostgres(var / "postgres")
    redis = EmbeddedRedis(var / "redis", port=int(os.environ.get("MEDIASEARCH_REDIS_PORT", 0)))
    s3 = (
        EmbeddedS3(
            var / "s3",
            port=int(os.environ.get("MEDIASEARCH_S3_PORT", 0)),
            secret_key=_s3_secret_key(var),
        )
        if args.s3
        else None
    )
    children: list[tuple[str, subprocess.Popen]] = []

    def shutdown(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    try:
        say("starting PostgreSQL (pgvector) in var/postgres")
        postgres.start()
        postgres.create_database("mediasearch")
        say("starting Redis (append-only file) in var/redis")
        redis.start()
        env = app_environment(var, postgres.url("mediasearch"), redis.url, debug=args.reload)
        if s3 is not None:
            say("starting S3 (SeaweedFS) in var/s3")
            s3.start()
            s3.create_bucket(S3_BUCKET)
            env.update(s3.environment(S3_BUCKET))
            say(f"files are kept in bucket {S3_BUCKET!r} at {s3.url}")
        if args.reload:
            env["DJANGO_CONN_MAX_AGE"] = "0"  # a thread per request: no connection outlives it
        check_connection_budget(postgres.url("postgres"))

        run_once(["manage.py", "migrate", "--no-input", "-v", "0"], env)
        login = ensure_admin(var, env)

        # A worker process per group of queues in the settings' table: a long video never
        # holds up a batch of photos, reading text never holds up embedding; the light
        # queues share the photos' process.
        for name, queues in dev_workers().items():
            children.append((name, spawn(
                ["-m", "celery", "-A", "mediasearch", "worker", "-Q", ",".join(queues),
                 "--loglevel=INFO", "--concurrency=1", "-n", f"dev-{name}-{os.getpid()}@%h"],
                env)))  # fmt: skip
        children.append(("beat", spawn(
            ["-m", "celery", "-A", "mediasearch", "beat", "--loglevel=INFO",
             "--schedule", str(var / "celerybeat-schedule")], env)))  # fmt: skip
        if env["DJANGO_DEBUG"] == "0":
            # Without debug, pages name hashed static files, which whitenoise serves from here.
            run_once(["manage.py", "collectstatic", "--no-input", "-v", "0"], env)
        children.insert(0, ("web", spawn(web_server(args.host, args.port, args.reload), env)))
        wait_for_port(args.host, args.port, 60, process=children[0][1], name="web server")
        if args.demo:
            say("uploading the demo gallery for admin (the worker embeds it in the background)")
            subprocess.call(
                [sys.executable, "manage.py", "load_demo_gallery"], cwd=REPO_ROOT, env=env
            )
        say("")
        say(f"MediaSearch is running at http://{args.host}:{args.port}/")
        say(login)
        say("Press Ctrl-C to stop everything.")
        say("")
        while True:
            for name, process in children:
                if process.poll() is not None:
                    say(f"the {name} process exited with code {process.returncode}; stopping")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping…")
        return 0
    finally:
        for _, process in reversed(children):
            stop(process)
        if s3 is not None:
            s3.stop()
        redis.stop()
        postgres.stop()
        say("stopped")


def dev_workers() -> dict[str, list[str]]:
    """The worker processes ./dev up runs, each with the queues it takes (from the table in
    mediasearch/settings/celery.py, which needs no environment to read)."""
    from mediasearch.settings.queues import MEDIASEARCH_QUEUES

    workers: dict[str, list[str]] = {}
    for queue, spec in MEDIASEARCH_QUEUES.items():
        workers.setdefault(spec["dev_worker"], []).append(queue)
    return workers


S3_BUCKET = "mediasearch"


def _s3_secret_key(var: Path) -> str:
    """The embedded S3 server's secret key: made on first start, kept in var/ (0600)."""
    secret_file = var / "s3_secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(30))
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def app_environment(
    var: Path, database_url: str, redis_url: str, *, debug: bool = False
) -> dict[str, str]:
    """The environment of every process of the app; ``debug`` unless DJANGO_DEBUG says."""
    secret_file = var / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(50))
        secret_file.chmod(0o600)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mediasearch.settings.base",
        "DJANGO_DEBUG": "1" if env_bool("DJANGO_DEBUG", debug) else "0",
        # ./dev serves plain http; behind a TLS proxy set it to 1 (and DJANGO_BEHIND_TLS_PROXY).
        "DJANGO_SECURE_COOKIES": os.environ.get("DJANGO_SECURE_COOKIES", "0"),
        "DJANGO_SECRET_KEY": secret_file.read_text().strip(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIASEARCH_VAR_DIR": str(var),
        "PYTHONUNBUFFERED": "1",
    }


def web_server(host: str, port: int, reload: bool) -> list[str]:
    if reload:
        return ["manage.py", "runserver", f"{host}:{port}"]
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [
        "-m", "gunicorn", "mediasearch.wsgi", "--bind", bind,
        "--workers", str(WEB_PROCESSES), "--threads", str(WEB_THREADS),
        "--timeout", "120", "--access-logfile", "-",
        # Its control socket sits at one path in $HOME, which a second ./dev up would take over.
        "--no-control-socket",
    ]  # fmt: skip


def check_connection_budget(server_url: str) -> None:
    """Refuse to start when web, worker and beat could take more than half of the server's
    connections (MEDIASEARCH_WEB_PROCESSES/THREADS set too high)."""
    import psycopg

    with psycopg.connect(server_url) as conn:
        (max_connections,) = conn.execute("SHOW max_connections").fetchone() or (0,)
    if int(max_connections) // 2 < DATABASE_CONNECTIONS_AT_MOST:
        raise SystemExit(
            f"[mediasearch] {WEB_PROCESSES} web processes x {WEB_THREADS} threads could hold "
            f"{DATABASE_CONNECTIONS_AT_MOST} of PostgreSQL's {max_connections} connections; "
            "lower MEDIASEARCH_WEB_PROCESSES or MEDIASEARCH_WEB_THREADS"
        )


def ensure_admin(var: Path, env: dict[str, str]) -> str:
    """Create the first superuser once; return how to log in."""
    password_file = var / "admin_password"
    script = (
        "from django.contrib.auth import get_user_model\n"
        "import os, sys\n"
        "User = get_user_model()\n"
        "if User.objects.filter(is_superuser=True).exists(): sys.exit(3)\n"
        "User.objects.create_superuser('admin', '', os.environ['MEDIASEARCH_ADMIN_PASSWORD'])\n"
    )
    password = password_file.read_text().strip() if password_file.exists() else None
    if password is None:
        password = secrets.token_urlsafe(12)
    code = subprocess.call(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=REPO_ROOT,
        env={**env, "MEDIASEARCH_ADMIN_PASSWORD": password},
    )
    if code == 0:
        password_file.write_text(password)
        password_file.chmod(0o600)
    if password_file.exists():
        return f"Log in as admin / {password_file.read_text().strip()} (kept in var/admin_password)"
    return "Log in with your existing account (./dev manage createsuperuser adds another)."


def run_once(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, check=True)


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    # Own process group, so Ctrl-C reaches us first and we stop children in order.
    return subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, start_new_session=True)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def say(message: str) -> None:
    print(f"[mediasearch] {message}" if message else "", flush=True)


if __name__ == "__main__":
    sys.exit(main())
