"""Reading the text in a picture: two OCR engines behind one small interface.

- ``rapidocr``: PP-OCR detection, direction and recognition models, run by ONNX Runtime,
  shipped inside the ``rapidocr-onnxruntime`` wheel (no download). Detection runs first and
  recognition only on what it finds, so a photo without text costs one detection pass. Its
  direction classifier turns upside-down lines; lines taller than wide are read turned a
  quarter, so text at 0/90/180/270 degrees is read.
- ``tesseract``: Debian's ``tesseract-ocr`` (LSTM models), run as a subprocess (its TSV output
  gives word boxes and confidences). When the upright passes find no confident word but do
  see marks, the picture is read again turned 90/180/270 degrees and the best reading kept.

Both see the picture reduced to ``max_side`` pixels (a 100-megapixel photo is read as a
few-megapixel one), and both give up after ``time_limit`` seconds with ``OcrTimeout``.
Plain Python: no Django, no Celery.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

ENGINES = ("rapidocr", "tesseract")
DEFAULT_MAX_SIDE = 1280
DEFAULT_DETECT_SIDE = 960
DEFAULT_TIME_LIMIT = 60.0
# Words read with less confidence than this are dropped (0..1).
DEFAULT_MIN_CONFIDENCE = 0.5


class OcrError(RuntimeError):
    """OCR could not read this picture; ``str(error)`` says why."""


class OcrTimeout(OcrError):
    """Reading took longer than the time limit."""


class OcrUnavailable(OcrError):
    """The engine is not installed (a package or program is missing)."""


@dataclass(frozen=True)
class TextBox:
    """One word read in a picture: its text as read, the engine's confidence (0..1) and its
    box as fractions of the picture's width and height (left, top, right, bottom), so that it
    can be drawn on any rendition of the same picture."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class TextReading:
    """What an engine read in one picture."""

    engine: str
    words: tuple[TextBox, ...] = ()
    detected: bool = False  # whether detection found any text region at all
    rotation: int = 0  # degrees (counter-clockwise) the picture was turned for the reading
    ms: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)


class OcrReader(Protocol):
    name: str

    def read(self, image: Image.Image, *, deadline: float) -> TextReading:
        """Read ``image`` (RGB, already reduced); raise ``OcrTimeout`` past ``deadline``
        (a ``time.monotonic()`` value)."""
        ...


def fold(text: str) -> str:
    """``text`` without case or accents ("Café" and "CAFE" both give "cafe"), as stored and as
    searched, so that folding never depends on PostgreSQL's ``unaccent`` extension."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped.replace("ß", "ss"))


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words_of(text: str) -> list[str]:
    """The folded words of ``text``: runs of letters and digits."""
    return _WORD.findall(fold(text))


def read_text(
    image: Image.Image,
    *,
    reader: OcrReader,
    max_side: int = DEFAULT_MAX_SIDE,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> TextReading:
    """Read the text of ``image`` with ``reader``, reduced to ``max_side`` pixels first.

    Returns the reading (no words when there is no text). Raises ``OcrTimeout`` when it takes
    longer than ``time_limit`` seconds, ``OcrError`` when the engine fails on this picture.
    """
    started = time.monotonic()
    picture = image.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    reading = reader.read(picture, deadline=started + time_limit)
    return TextReading(
        engine=reading.engine,
        words=reading.words,
        detected=reading.detected,
        rotation=reading.rotation,
        ms=(time.monotonic() - started) * 1000,
    )


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise OcrTimeout("reading the text took longer than the time limit")


def _bounds(points, width: int, height: int) -> tuple[float, float, float, float]:
    xs = [float(point[0]) for point in points]
    ys = [float(point[1]) for point in points]

    def clip(value: float) -> float:
        return round(min(1.0, max(0.0, value)), 4)

    return (
        clip(min(xs) / width),
        clip(min(ys) / height),
        clip(max(xs) / width),
        clip(max(ys) / height),
    )


def _split_line(
    text: str, confidence: float, box: tuple[float, float, float, float]
) -> list[TextBox]:
    """A line read as one piece, as words: a horizontal line's box is shared out by character
    offsets (close enough to highlight a word); a vertical one keeps the line's box."""
    left, top, right, bottom = box
    horizontal = (right - left) >= (bottom - top)
    words = []
    for match in re.finditer(r"\S+", text):
        if horizontal and text:
            span = (right - left) / len(text)
            word_box = (
                round(left + span * match.start(), 4),
                top,
                round(left + span * match.end(), 4),
                bottom,
            )
        else:
            word_box = box
        words.append(TextBox(text=match.group(), confidence=confidence, box=word_box))
    return words


@dataclass
class RapidOcrReader:
    """PP-OCR through ``rapidocr-onnxruntime``; the models load on first use."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    threads: int = 1
    # Detection runs on the picture scaled to at most this many pixels on its longer side.
    # RapidOCR's own default scales the shorter side up to 736 px instead: on the generated
    # set, a 960 px cap kept the same word recall at 0.6x the time (docs/TEXT.md).
    detect_side: int = DEFAULT_DETECT_SIDE
    name: str = "rapidocr"
    _engine: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _loaded(self):
        with self._lock:
            if self._engine is None:
                try:
                    from rapidocr_onnxruntime import RapidOCR
                except ImportError as exc:
                    raise OcrUnavailable(f"rapidocr-onnxruntime is not installed ({exc})") from None
                self._engine = RapidOCR(
                    intra_op_num_threads=self.threads,
                    inter_op_num_threads=1,
                    det_limit_type="max",
                    det_limit_side_len=self.detect_side,
                )
            return self._engine

    def read(self, image: Image.Image, *, deadline: float) -> TextReading:
        engine = self._loaded()
        array = np.asarray(image)
        _check_deadline(deadline)
        try:
            # RapidOCR detects first and returns (None, None) without running recognition (or
            # the direction classifier) when it finds no text region.
            result, _ = engine(array, use_det=True, use_cls=True, use_rec=True)
        except OcrError:
            raise
        except Exception as exc:  # onnxruntime and OpenCV raise their own kinds
            raise OcrError(f"RapidOCR failed on this picture ({type(exc).__name__})") from exc
        _check_deadline(deadline)
        if result is None:
            return TextReading(engine=self.name)
        width, height = image.size
        words: list[TextBox] = []
        for points, text, score in result or []:
            if float(score) < self.min_confidence or not str(text).strip():
                continue
            words.extend(
                _split_line(str(text), round(float(score), 3), _bounds(points, width, height))
            )
        return TextReading(engine=self.name, words=tuple(words), detected=True)


@dataclass
class TesseractReader:
    """Tesseract's LSTM engine, one subprocess per reading."""

    languages: str = "eng"
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    name: str = "tesseract"
    program: str = "tesseract"

    def read(self, image: Image.Image, *, deadline: float) -> TextReading:
        if shutil.which(self.program) is None:
            raise OcrUnavailable("the tesseract program is not installed (tesseract-ocr)")
        best: TextReading | None = None
        # Sparse text (psm 11) suits photos; whole-page layout (psm 3) finds some lines that
        # the sparse mode misses, so the upright picture gets both when the first finds nothing.
        attempts = [(0, "11"), (0, "3"), (90, "3"), (180, "3"), (270, "3")]
        detected = False
        for rotation, psm in attempts:
            turned = image if rotation == 0 else image.rotate(rotation, expand=True)
            found, marks = self._run(turned, deadline, psm)
            detected = detected or marks > 0
            words = tuple(_unturned(word, rotation) for word in found)
            if best is None or _reading_score(words) > _reading_score(best.words):
                best = TextReading(engine=self.name, words=words, rotation=rotation)
            if _confident(best.words):
                break
            # Turning is worth trying only when the upright passes saw marks they could not read.
            if rotation == 0 and psm == "3" and not detected:
                break
        assert best is not None
        return TextReading(
            engine=self.name, words=best.words, detected=detected, rotation=best.rotation
        )

    def _run(self, image: Image.Image, deadline: float, psm: str) -> tuple[list[TextBox], int]:
        _check_deadline(deadline)
        png = io.BytesIO()
        image.save(png, format="PNG", compress_level=1)
        try:
            done = subprocess.run(
                [self.program, "stdin", "stdout", "-l", self.languages, "--psm", psm, "tsv"],
                input=png.getvalue(),
                capture_output=True,
                timeout=max(0.1, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise OcrTimeout("reading the text took longer than the time limit") from None
        except OSError as exc:
            raise OcrUnavailable(f"tesseract could not be started ({exc.strerror})") from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OcrError(f"tesseract failed: {message[-1] if message else done.returncode}")
        width, height = image.size
        words, marks = [], 0
        for line in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
            cells = line.split("\t")
            if len(cells) < 12 or cells[0] != "5":
                continue
            marks += 1
            confidence = float(cells[10]) / 100
            text = cells[11].strip()
            if not text or confidence < self.min_confidence or not _WORD.search(text):
                continue
            left, top, w, h = (int(cells[i]) for i in (6, 7, 8, 9))
            words.append(
                TextBox(
                    text=text,
                    confidence=round(confidence, 3),
                    box=_bounds([(left, top), (left + w, top + h)], width, height),
                )
            )
        return words, marks


def _reading_score(words) -> float:
    return sum(word.confidence * len(word.text) for word in words)


def _confident(words) -> bool:
    return any(word.confidence >= 0.8 and len(word.text) >= 3 for word in words)


def _unturned(word: TextBox, rotation: int) -> TextBox:
    """A box found in the picture turned ``rotation`` degrees counter-clockwise, in the
    coordinates of the picture itself."""
    left, top, right, bottom = word.box
    if rotation == 90:  # turned left: (x, y) of the turned picture is (1 - y, x) of the picture
        box = (1 - bottom, left, 1 - top, right)
    elif rotation == 180:
        box = (1 - right, 1 - bottom, 1 - left, 1 - top)
    elif rotation == 270:
        box = (top, 1 - right, bottom, 1 - left)
    else:
        box = word.box
    return TextBox(text=word.text, confidence=word.confidence, box=box)


_READERS: dict[str, Callable[..., OcrReader]] = {
    "rapidocr": RapidOcrReader,
    "tesseract": TesseractReader,
}


def load_reader(name: str, **options) -> OcrReader:
    """The reader called ``name`` (one of ``ENGINES``). Models load lazily, on first read.

    Raises ``ValueError`` for an unknown name.
    """
    try:
        factory = _READERS[name]
    except KeyError:
        raise ValueError(f"unknown OCR engine {name!r} (known: {', '.join(ENGINES)})") from None
    return factory(**options)
