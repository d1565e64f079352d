"""HTTPS, browser security headers, rate limits and the login lockout. ``manage.py check
--deploy`` passes with these production defaults (tests/test_security_settings.py)."""

from datetime import timedelta

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
# hammering upload or search does. Login has its own lockout (django-axes, below).
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

# Login lockout (django-axes): only failures count, per (account name, client address), so
# someone guessing admin's password locks out their own address, never admin elsewhere; a
# success does not count. Locked out until the cool-off has passed since the last failure.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("MEDIASEARCH_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("MEDIASEARCH_LOGIN_COOLOFF_SECONDS", 900))
# A guess during the lockout must not push its end further: the answer says when it ends.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "search.web.rate_limits.login_client_ip"
AXES_LOCKOUT_CALLABLE = "search.web.middleware.login_locked_out"
# Registered by search/admin.py instead, with the admin's guard against NUL in list queries.
AXES_ENABLE_ADMIN = False
