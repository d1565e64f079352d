from .environment import env_bool, env_str, var_dir

# Every file access goes through Django's storage API, so web and workers may run on different
# hosts: local disk for one machine, S3-compatible storage for several.
MEDIA_ROOT = env_str("MEDIASEARCH_MEDIA_ROOT", str(var_dir() / "media"))
MEDIA_URL = "/media/"  # never served directly: photos go through authorised views

_backend = env_str("MEDIASEARCH_STORAGE", "local")
if _backend == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
elif _backend == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("MEDIASEARCH_S3_BUCKET"),
            "endpoint_url": env_str("MEDIASEARCH_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("MEDIASEARCH_S3_REGION", "") or None,
            "access_key": env_str("MEDIASEARCH_S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("MEDIASEARCH_S3_SECRET_ACCESS_KEY", "") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
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
