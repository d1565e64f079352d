from django.core.exceptions import ImproperlyConfigured

from .environment import env_bool, env_float, env_int, env_str

# Any open_clip architecture; MEDIASEARCH_CLIP_PRETRAINED is an open_clip tag (downloaded from
# the hub when online) or a path to a local checkpoint file. When neither can be loaded, the
# engine falls back to the small demo model the project ships, and every page says so.
MEDIASEARCH_CLIP_MODEL = env_str("MEDIASEARCH_CLIP_MODEL", "ViT-B-32")
MEDIASEARCH_CLIP_PRETRAINED = env_str("MEDIASEARCH_CLIP_PRETRAINED", "laion2b_s34b_b79k")
MEDIASEARCH_CLIP_DEVICE = env_str("MEDIASEARCH_CLIP_DEVICE", "cpu")
MEDIASEARCH_CLIP_CACHE_DIR = env_str("MEDIASEARCH_CLIP_CACHE_DIR", "") or None

MEDIASEARCH_SEARCH_LIMIT = env_int("MEDIASEARCH_SEARCH_LIMIT", 60)
# HNSW candidate list size at query time; higher is slower and more exact.
MEDIASEARCH_HNSW_EF_SEARCH = env_int("MEDIASEARCH_HNSW_EF_SEARCH", 100)
MEDIASEARCH_THUMBNAIL_SIZE = env_int("MEDIASEARCH_THUMBNAIL_SIZE", 384)
MEDIASEARCH_PREVIEW_SIZE = env_int("MEDIASEARCH_PREVIEW_SIZE", 1600)
# Web servers load the model in the background at start instead of on the first search.
MEDIASEARCH_WARM_UP = env_bool("MEDIASEARCH_WARM_UP", True)
# Photos a worker embeds in one forward pass (its own plus others waiting in the queue).
MEDIASEARCH_EMBED_BATCH_SIZE = env_int("MEDIASEARCH_EMBED_BATCH_SIZE", 16)

# Near-duplicates (cosine distances; docs/DUPLICATES.md has the measurements behind the values).
# Pairs are recorded up to the widest distance; the duplicates page starts at the default and
# lets the owner move between 0 and the widest. Both depend on the model: measure yours with
# ``manage.py evaluate_duplicates``.
MEDIASEARCH_DUPLICATE_MAX_DISTANCE = env_float("MEDIASEARCH_DUPLICATE_MAX_DISTANCE", 0.1)
MEDIASEARCH_DUPLICATE_DISTANCE = env_float("MEDIASEARCH_DUPLICATE_DISTANCE", 0.05)
# Two thumbnails must also correlate this well (-1 turns the check off): close vectors alone
# do not tell a copy from another picture of the same things.
MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION = env_float(
    "MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION", 0.8
)
if not 0 <= MEDIASEARCH_DUPLICATE_DISTANCE <= MEDIASEARCH_DUPLICATE_MAX_DISTANCE <= 2:
    raise ImproperlyConfigured(
        "Near-duplicate distances must satisfy 0 <= MEDIASEARCH_DUPLICATE_DISTANCE <= "
        "MEDIASEARCH_DUPLICATE_MAX_DISTANCE <= 2."
    )
