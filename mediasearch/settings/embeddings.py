import os

from django.core.exceptions import ImproperlyConfigured

from .environment import env_bool, env_float, env_int, env_str, var_dir

# Any open_clip architecture; MEDIASEARCH_CLIP_PRETRAINED is an open_clip tag (downloaded from
# the hub when online) or a path to a local checkpoint file. When neither can be loaded, the
# engine falls back to the small demo model the project ships, and every page says so.
MEDIASEARCH_CLIP_MODEL = env_str("MEDIASEARCH_CLIP_MODEL", "ViT-B-32")
MEDIASEARCH_CLIP_PRETRAINED = env_str("MEDIASEARCH_CLIP_PRETRAINED", "laion2b_s34b_b79k")
# "cpu" or "cuda" ("cuda:1"...): a CUDA device torch cannot see falls back to the CPU, with the
# reason on the dashboard. On CUDA the forward pass runs under autocast in
# MEDIASEARCH_CLIP_GPU_PRECISION (fp16, bf16, or fp32 for none).
MEDIASEARCH_CLIP_DEVICE = env_str("MEDIASEARCH_CLIP_DEVICE", "cpu")
MEDIASEARCH_CLIP_GPU_PRECISION = env_str("MEDIASEARCH_CLIP_GPU_PRECISION", "fp16")
# The runtime of the forward passes on the CPU (workers/embedding/backends.py): torch (the
# reference), onnxruntime, openvino, or auto (the fastest that passes the parity gate on this
# machine). Anything but torch is exported once per model into MEDIASEARCH_CLIP_EXPORT_DIR, a
# local folder of each host (not shared storage: every host exports for itself).
MEDIASEARCH_CLIP_BACKEND = env_str("MEDIASEARCH_CLIP_BACKEND", "auto")
MEDIASEARCH_CLIP_EXPORT_DIR = env_str("MEDIASEARCH_CLIP_EXPORT_DIR", str(var_dir() / "clip-export"))
# fp32, or int8 (dynamic int8 weights, ONNX Runtime or OpenVINO): about 3x faster on a CPU,
# its vectors under their own model id (docs/PERFORMANCE.md has the recall it costs).
MEDIASEARCH_CLIP_PRECISION = env_str("MEDIASEARCH_CLIP_PRECISION", "fp32")
if MEDIASEARCH_CLIP_PRECISION not in ("fp32", "int8"):
    raise ImproperlyConfigured("MEDIASEARCH_CLIP_PRECISION is fp32 or int8.")
if MEDIASEARCH_CLIP_BACKEND not in ("torch", "onnxruntime", "openvino", "auto"):
    raise ImproperlyConfigured(
        "MEDIASEARCH_CLIP_BACKEND is one of torch, onnxruntime, openvino, auto."
    )
MEDIASEARCH_CLIP_CACHE_DIR = env_str("MEDIASEARCH_CLIP_CACHE_DIR", "") or None
# The only place a checkpoint file chosen on the dashboard may come from (staff name a file in
# it); MEDIASEARCH_CLIP_PRETRAINED above is the operator's own and may be any path. Keep it apart
# from the media folder: an upload is no checkpoint to offer.
MEDIASEARCH_MODELS_DIR = env_str("MEDIASEARCH_MODELS_DIR", str(var_dir() / "models"))
if not os.path.isabs(MEDIASEARCH_MODELS_DIR):
    raise ImproperlyConfigured(
        "MEDIASEARCH_MODELS_DIR must be an absolute path (a folder with no files accepts none)."
    )

# HNSW candidate list size at query time; higher is slower and more exact. 300 keeps recall@10
# at 0.95 up to a million photos and costs no measurable time at 100k (docs/PERFORMANCE.md).
MEDIASEARCH_HNSW_EF_SEARCH = env_int("MEDIASEARCH_HNSW_EF_SEARCH", 300)
MEDIASEARCH_THUMBNAIL_SIZE = env_int("MEDIASEARCH_THUMBNAIL_SIZE", 384)
MEDIASEARCH_PREVIEW_SIZE = env_int("MEDIASEARCH_PREVIEW_SIZE", 1600)
# Web servers load the model in the background at start instead of on the first search.
MEDIASEARCH_WARM_UP = env_bool("MEDIASEARCH_WARM_UP", True)
# Photos a worker embeds in one forward pass (its own plus others waiting in the queue).
MEDIASEARCH_EMBED_BATCH_SIZE = env_int("MEDIASEARCH_EMBED_BATCH_SIZE", 16)
# Videos (docs/VIDEO.md): longer ones are refused with the reason; keyframes are taken at scene
# changes, at least MIN_GAP and at most MAX_GAP seconds apart, at most MAX_FRAMES per video.
MEDIASEARCH_MAX_VIDEO_SECONDS = env_int("MEDIASEARCH_MAX_VIDEO_SECONDS", 3 * 3600)
# A Live Photo's or motion photo's clip: a few seconds; a longer one is not made playable.
MEDIASEARCH_MAX_MOTION_SECONDS = env_int("MEDIASEARCH_MAX_MOTION_SECONDS", 60)
# How often a worker records how far into a video it has decoded (the dashboard's progress).
MEDIASEARCH_VIDEO_PROGRESS_EVERY = env_float("MEDIASEARCH_VIDEO_PROGRESS_EVERY", 2.0)
MEDIASEARCH_VIDEO_MIN_GAP = env_float("MEDIASEARCH_VIDEO_MIN_GAP", 1.0)
MEDIASEARCH_VIDEO_MAX_GAP = env_float("MEDIASEARCH_VIDEO_MAX_GAP", 10.0)
MEDIASEARCH_VIDEO_MAX_FRAMES = env_int("MEDIASEARCH_VIDEO_MAX_FRAMES", 600)
# Making a browser-playable copy (of an HEVC original, say) is given up after this long.
MEDIASEARCH_VIDEO_TRANSCODE_TIME_LIMIT = env_int("MEDIASEARCH_VIDEO_TRANSCODE_TIME_LIMIT", 3000)
# Threads a worker decodes and resizes a batch's photos on (Pillow runs them in parallel).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
MEDIASEARCH_DECODE_THREADS = env_int("MEDIASEARCH_DECODE_THREADS", min(_CORES or 1, 8))
# Torch threads per process (0: one per core). Web processes encode one short query per request
# and serve requests in parallel: one thread each. A worker's batches use the cores; on a host
# shared with the web server, give the worker the cores the web server leaves free.
MEDIASEARCH_TORCH_THREADS = env_int("MEDIASEARCH_TORCH_THREADS", 1)
MEDIASEARCH_WORKER_TORCH_THREADS = env_int("MEDIASEARCH_WORKER_TORCH_THREADS", 0)
# Niceness of worker processes (0-19): on a host shared with the web server, a person waiting
# for a page gets the CPU before a batch of photos does. Workers only ever lower their priority.
MEDIASEARCH_WORKER_NICENESS = env_int("MEDIASEARCH_WORKER_NICENESS", 10)
# Weak-match cut-offs as JSON, {"text": {"loose": …, "normal": …, "strict": …}, "image": {…}};
# empty: the demo model's measured calibration, or generic CLIP figures (see search.relevance).
MEDIASEARCH_MATCH_THRESHOLDS = env_str("MEDIASEARCH_MATCH_THRESHOLDS", "")
# Results a search ranks at most (pages are cut from these, so their order is stable).
MEDIASEARCH_SEARCH_MAX_RESULTS = env_int("MEDIASEARCH_SEARCH_MAX_RESULTS", 500)
# A video has a vector per keyframe, and is shown once, at its best: when a library holds
# videos, a search reads this many times as many vector rows before it keeps one per item.
MEDIASEARCH_SEARCH_FRAME_OVERFETCH = env_int("MEDIASEARCH_SEARCH_FRAME_OVERFETCH", 4)
# Below this many candidate photos a search scans them exactly instead of using the HNSW index.
MEDIASEARCH_EXACT_SCAN_BELOW = env_int("MEDIASEARCH_EXACT_SCAN_BELOW", 2000)

# Zero-shot tags: a vocabulary file (format: workers/embedding/tags.py) with its own prompt
# templates, which belong with the phrases they wrap. Empty: the shipped vocabulary for the
# active model (workers/embedding/tag_vocabulary.txt, or demo/tag_vocabulary.txt for the demo
# model). After changing it, run `manage.py retag_photos`.
MEDIASEARCH_TAG_VOCABULARY = env_str("MEDIASEARCH_TAG_VOCABULARY", "")
# A photo gets a tag when its probability among the tags of its group reaches this (a group of
# the vocabulary may ask for more). At 0.4 the demo model gives held-out scenes the right
# colour 97% of the time and a wrong one 4% (MODEL_CARD.md, "Tags").
MEDIASEARCH_TAG_MIN_SCORE = env_float("MEDIASEARCH_TAG_MIN_SCORE", 0.4)
# The tag text vectors of each (model, vocabulary), kept on disk so that only the first worker
# process pays for encoding the vocabulary (about a thousand texts for the shipped one). Empty
# string: keep them in memory only.
MEDIASEARCH_TAG_CACHE_DIR = env_str("MEDIASEARCH_TAG_CACHE_DIR", str(var_dir() / "tag-vectors"))

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
