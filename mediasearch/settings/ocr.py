"""Text in photos (OCR): which engine reads it, its limits, and its queue."""

from .environment import env_bool, env_float, env_int, env_str

# On by default; off here (or on the dashboard) stops new readings and leaves the text
# already read searchable.
MEDIASEARCH_OCR_ENABLED = env_bool("MEDIASEARCH_OCR_ENABLED", True)
# "rapidocr" (PP-OCR, the default: better recall and precision on the measured set, see
# docs/TEXT.md) or "tesseract" (the tesseract-ocr program, with MEDIASEARCH_OCR_LANGUAGES).
MEDIASEARCH_OCR_ENGINE = env_str("MEDIASEARCH_OCR_ENGINE", "rapidocr")
MEDIASEARCH_OCR_LANGUAGES = env_str("MEDIASEARCH_OCR_LANGUAGES", "eng")
# A picture is read at most this many pixels on its longer side (a 100-megapixel photo is
# decoded at a reduced scale, then shrunk to it).
MEDIASEARCH_OCR_MAX_SIDE = env_int("MEDIASEARCH_OCR_MAX_SIDE", 1280)
# The engine gives up after this many seconds; the task's own limit is a little longer, so a
# reading that hangs inside the engine still fails alone.
MEDIASEARCH_OCR_TIME_LIMIT = env_int("MEDIASEARCH_OCR_TIME_LIMIT", 60)
MEDIASEARCH_OCR_TASK_TIME_LIMIT = env_int(
    "MEDIASEARCH_OCR_TASK_TIME_LIMIT", MEDIASEARCH_OCR_TIME_LIMIT + 60
)
# A photo whose reading kills its worker this many times is marked failed.
MEDIASEARCH_OCR_MAX_ATTEMPTS = env_int("MEDIASEARCH_OCR_MAX_ATTEMPTS", 3)
# ONNX Runtime threads per OCR worker process.
MEDIASEARCH_OCR_THREADS = env_int("MEDIASEARCH_OCR_THREADS", 2)
# How much a photo's text (OCR) adds to its CLIP score in one ranking, in units of the model's
# "good" text cut-off: at 1, a photo whose text holds every word of the query is a good match;
# 0 leaves text out of the ordinary ranking (``text:`` queries still search it).
MEDIASEARCH_TEXT_MATCH_WEIGHT = env_float("MEDIASEARCH_TEXT_MATCH_WEIGHT", 1.0)
