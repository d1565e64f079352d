from .environment import env_bool, env_int, env_str

# Any open_clip architecture; MEDIASEARCH_CLIP_PRETRAINED is an open_clip tag (downloaded from
# the hub when online) or a path to a local checkpoint file. When neither can be loaded, the
# engine falls back to the small demo model the project ships, and every page says so.
MEDIASEARCH_CLIP_MODEL = env_str("MEDIASEARCH_CLIP_MODEL", "ViT-B-32")
MEDIASEARCH_CLIP_PRETRAINED = env_str("MEDIASEARCH_CLIP_PRETRAINED", "laion2b_s34b_b79k")
MEDIASEARCH_CLIP_DEVICE = env_str("MEDIASEARCH_CLIP_DEVICE", "cpu")
MEDIASEARCH_CLIP_CACHE_DIR = env_str("MEDIASEARCH_CLIP_CACHE_DIR", "") or None

# HNSW candidate list size at query time; higher is slower and more exact.
MEDIASEARCH_HNSW_EF_SEARCH = env_int("MEDIASEARCH_HNSW_EF_SEARCH", 100)
MEDIASEARCH_THUMBNAIL_SIZE = env_int("MEDIASEARCH_THUMBNAIL_SIZE", 384)
MEDIASEARCH_PREVIEW_SIZE = env_int("MEDIASEARCH_PREVIEW_SIZE", 1600)
# Web servers load the model in the background at start instead of on the first search.
MEDIASEARCH_WARM_UP = env_bool("MEDIASEARCH_WARM_UP", True)
# Photos a worker embeds in one forward pass (its own plus others waiting in the queue).
MEDIASEARCH_EMBED_BATCH_SIZE = env_int("MEDIASEARCH_EMBED_BATCH_SIZE", 16)
# Weak-match cut-offs as JSON, {"text": {"loose": …, "normal": …, "strict": …}, "image": {…}};
# empty: the demo model's measured calibration, or generic CLIP figures (see search.relevance).
MEDIASEARCH_MATCH_THRESHOLDS = env_str("MEDIASEARCH_MATCH_THRESHOLDS", "")
# Results a search ranks at most (pages are cut from these, so their order is stable).
MEDIASEARCH_SEARCH_MAX_RESULTS = env_int("MEDIASEARCH_SEARCH_MAX_RESULTS", 500)
# Below this many candidate photos a search scans them exactly instead of using the HNSW index.
MEDIASEARCH_EXACT_SCAN_BELOW = env_int("MEDIASEARCH_EXACT_SCAN_BELOW", 2000)
