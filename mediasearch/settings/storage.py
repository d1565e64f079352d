import os
from collections.abc import Mapping
from typing import Any

from .environment import env_bool, env_str, var_dir

# Every file access goes through Django's storage API, so web and workers may run on different
# hosts: local disk for one machine, S3-compatible storage for several.
MEDIA_ROOT = env_str("MEDIASEARCH_MEDIA_ROOT", str(var_dir() / "media"))
MEDIA_URL = "/media/"  # never served directly: photos go through authorised views


def s3_storage_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``STORAGES["default"]`` entry for the S3-compatible store ``environ`` names."""
    from botocore.config import Config

    def value(name: str, default: str = "") -> str:
        return environ.get(name, default) or default

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": environ["MEDIASEARCH_S3_BUCKET"],
            # Every key under this prefix (empty: the whole bucket is the app's).
            "location": value("MEDIASEARCH_S3_PREFIX"),
            "endpoint_url": value("MEDIASEARCH_S3_ENDPOINT_URL") or None,
            "region_name": value("MEDIASEARCH_S3_REGION") or None,
            "access_key": value("MEDIASEARCH_S3_ACCESS_KEY_ID") or None,
            "secret_key": value("MEDIASEARCH_S3_SECRET_ACCESS_KEY") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
            # An original read by a worker is spooled to a temporary file past this size, not
            # held in memory (a video may be 4 GB).
            "max_memory_size": 16 * 1024 * 1024,
            # A store that does not answer fails a request within seconds (an upload is refused,
            # a worker's batch is retried later, a served file answers 503), rather than holding
            # a web thread for botocore's default minute per connection attempt.
            "client_config": Config(
                # "path" for a store on a host name without bucket subdomains (SeaweedFS, MinIO
                # on one address); "auto" lets botocore choose (AWS: virtual hosts).
                s3={"addressing_style": value("MEDIASEARCH_S3_ADDRESSING_STYLE", "auto")},
                signature_version="s3v4",
                connect_timeout=float(value("MEDIASEARCH_S3_CONNECT_TIMEOUT", "3")),
                read_timeout=float(value("MEDIASEARCH_S3_READ_TIMEOUT", "30")),
                retries={
                    "max_attempts": int(value("MEDIASEARCH_S3_MAX_ATTEMPTS", "3")),
                    "mode": "standard",
                },
            ),
        },
    }


_backend = env_str("MEDIASEARCH_STORAGE", "local")
if _backend == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
elif _backend == "s3":
    if not env_str("MEDIASEARCH_S3_BUCKET", ""):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("MEDIASEARCH_STORAGE=s3 needs MEDIASEARCH_S3_BUCKET.")
    _default_storage = s3_storage_settings(os.environ)
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"MEDIASEARCH_STORAGE must be 'local' or 's3', not {_backend!r}.")

STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if not env_bool("MEDIASEARCH_MANIFEST_STATIC", not env_bool("DJANGO_DEBUG", False))
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
