"""HTTPS, browser security headers and rate limits. ``manage.py check --deploy`` passes with
these production defaults (tests/test_security_settings.py)."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env_bool, env_int, env_str

_debug = env_bool("DJANGO_DEBUG", False)
_https = env_bool("DJANGO_SECURE_COOKIES", not _debug)

# Behind TLS in production. A plain-http trial (DJANGO_SECURE_COOKIES=0) turns these off too.
# Behind a TLS-terminating proxy, set DJANGO_BEHIND_TLS_PROXY=1, or the redirect would loop.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", _https)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container health check speaks plain http
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading binds the whole domain into browsers for months: its owner's decision alone.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Pages: scripts and styles from this site only, no inline code, no plugins, no framing.
MEDIASEARCH_CSP = env_str(
    "MEDIASEARCH_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'",
)
# Served photo files: nothing may run even if a browser treated one as a document.
MEDIASEARCH_CSP_FILES = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"

# Rate limits: "per user,per IP/window seconds". Generous: a person never meets them; a script
# hammering login, upload or search does. The per-user count of login is per account name.
MEDIASEARCH_RATE_LIMITS_ENABLED = env_bool("MEDIASEARCH_RATE_LIMITS", True)
MEDIASEARCH_TRUST_X_FORWARDED_FOR = env_bool("DJANGO_BEHIND_TLS_PROXY", False)


def _rate(name: str, default: str) -> dict[str, int]:
    value = env_str(name, default)
    try:
        counts, window = value.split("/")
        per_user, per_ip = (int(part) for part in counts.split(","))
        return {"per_user": per_user, "per_ip": per_ip, "window": int(window)}
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must look like 'per_user,per_ip/seconds' (e.g. 10,50/300), not {value!r}."
        ) from None


MEDIASEARCH_RATE_LIMITS = {
    "login": _rate("MEDIASEARCH_RATE_LIMIT_LOGIN", "10,50/300"),
    # The upload page sends one file per request: 600 a minute lets a folder go at full speed.
    "upload": _rate("MEDIASEARCH_RATE_LIMIT_UPLOAD", "600,1200/60"),
    "search": _rate("MEDIASEARCH_RATE_LIMIT_SEARCH", "120,600/60"),
}

# The rate-limit counters, shared by every web process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("REDIS_URL"),
        "KEY_PREFIX": "mediasearch",
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}
