"""``./dev up``: the whole app on one machine, with nothing installed system-wide.

Starts the embedded PostgreSQL (pgvector) and Redis, migrates, makes sure an admin exists,
then runs Django, a Celery worker and Celery beat, and stops all of it on Ctrl-C. Data lives
under ``var/`` and is reused by the next run. Production runs the same processes from
docker-compose.yml against real services instead.
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

from mediasearch.embedded import EmbeddedPostgres, EmbeddedRedis, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    args = parser.parse_args(argv)

    var = var_dir()
    postgres = EmbeddedPostgres(var / "postgres")
    redis = EmbeddedRedis(var / "redis", port=int(os.environ.get("MEDIASEARCH_REDIS_PORT", 0)))
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
        env = app_environment(var, postgres.url("mediasearch"), redis.url)

        run_once(["manage.py", "migrate", "--no-input", "-v", "0"], env)
        login = ensure_admin(var, env)

        children.append(
            (
                "web",
                spawn(["manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"], env),
            )
        )
        children.append(
            (
                "worker",
                spawn(
                    [
                        "-m",
                        "celery",
                        "-A",
                        "mediasearch",
                        "worker",
                        "--loglevel=INFO",
                        "--concurrency=1",
                        "-n",
                        f"dev-worker-{os.getpid()}@%h",
                    ],
                    env,
                ),
            )
        )
        children.append(("beat", spawn(
            ["-m", "celery", "-A", "mediasearch", "beat", "--loglevel=INFO",
             "--schedule", str(var / "celerybeat-schedule")], env)))  # fmt: skip
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
        redis.stop()
        postgres.stop()
        say("stopped")


def app_environment(var: Path, database_url: str, redis_url: str) -> dict[str, str]:
    secret_file = var / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(50))
        secret_file.chmod(0o600)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mediasearch.settings.base",
        "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "1"),
        "DJANGO_SECRET_KEY": secret_file.read_text().strip(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIASEARCH_VAR_DIR": str(var),
        "PYTHONUNBUFFERED": "1",
    }


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
