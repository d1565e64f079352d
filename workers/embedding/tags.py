"""Zero-shot tags: which words of a vocabulary CLIP finds in a photo. Plain Python + numpy.

A vocabulary file is UTF-8 text, one statement a line; blank lines and lines starting with ``#``
are ignored (there are no comments at the end of a line)::

    template: a photo of {}.
    template: a picture of {}.

    [scene]
    beach: a beach | a sandy beach by the sea
    snow: snow | a snowy landscape
    city

    [colour]
    template: a {} shape
    min score: 0.5
    red
    grey: grey | gray
    (other): a shape of no colour

- ``[name]`` starts a group. The tags of a group compete with each other.
- ``template: ...{}...`` before the first group applies to every group; inside a group, that
  group's templates replace the global ones. Each template has exactly one ``{}``, where a
  phrase goes. Without any, the templates are ``DEFAULT_TEMPLATES``.
- ``name: phrase | phrase`` is a tag and the phrases that describe it; a bare ``name`` is its
  own phrase. A name in parentheses is a distractor: it competes in its group (so that the
  group can say "none of these") but is never given as a tag. Names of tags that can be given
  are unique across the whole vocabulary, because a photo stores its tags without their group.
- ``min score: 0.5`` inside a group overrides the caller's minimum probability for it.
- ``template`` and ``min score`` followed by a colon are statements, never tag names.

As in CLIP's zero-shot recipe, a tag's text vector is the mean of its normalised
(template, phrase) embeddings, normalised again. Within a group, a photo's cosine similarities
to the tags, times the model's logit scale, go through a softmax; the photo gets every tag of the
group whose probability reaches the minimum score: one or a few per group, or none when the
group is undecided.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

VOCABULARY_DIR = Path(__file__).resolve().parent
GENERAL_VOCABULARY = VOCABULARY_DIR / "tag_vocabulary.txt"
DEMO_VOCABULARY = VOCABULARY_DIR / "demo" / "tag_vocabulary.txt"
# Templates for a vocabulary file that names none.
DEFAULT_TEMPLATES = ("a photo of {}.", "a picture of {}.")
# open_clip's models are trained with a learned scale capped at 100; a model without one gets
# CLIP's final value.
DEFAULT_LOGIT_SCALE = 100.0
MAX_NAME_LENGTH = 100  # PhotoTag.name
# Texts per forward pass when the tag vectors are computed: bounds memory for big vocabularies.
ENCODE_CHUNK = 256

Tags = list[tuple[str, float]]  # one photo's tags: (name, probability), best first


class VocabularyError(ValueError):
    """The vocabulary file cannot be used; ``str(error)`` names the file, the line and why."""


@dataclass(frozen=True)
class Tag:
    name: str
    phrases: tuple[str, ...]
    hidden: bool = False  # a distractor: it competes in its group but is never given


@dataclass(frozen=True)
class TagGroup:
    name: str
    tags: tuple[Tag, ...]
    templates: tuple[str, ...]
    min_score: float | None = None  # None: the caller's minimum

    def texts(self, tag: Tag) -> list[str]:
        return [template.format(phrase) for phrase in tag.phrases for template in self.templates]


@dataclass(frozen=True)
class TagVocabulary:
    groups: tuple[TagGroup, ...]
    source: str = ""  # where it was read from, for messages

    @property
    def digest(self) -> str:
        """A hash of what the tags mean (not of comments or layout): equal digests, equal tags."""
        canonical = [
            [g.name, g.templates, g.min_score, [[t.name, t.phrases, t.hidden] for t in g.tags]]
            for g in self.groups
        ]
        return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()

    def tag_names(self) -> list[str]:
        """Every tag a photo can be given, in file order."""
        return [tag.name for group in self.groups for tag in group.tags if not tag.hidden]

    def group_of(self, tag_name: str) -> str | None:
        """The name of the group that gives ``tag_name``, or None if it is not in here."""
        for group in self.groups:
            if any(tag.name == tag_name and not tag.hidden for tag in group.tags):
                return group.name
        return None


def load_vocabulary(path: str | Path) -> TagVocabulary:
    """Read and check a vocabulary file. Raises ``VocabularyError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabularyError(f"cannot read the tag vocabulary {path}: {exc}") from exc
    return parse_vocabulary(text, source=str(path))


def parse_vocabulary(text: str, *, source: str = "<text>") -> TagVocabulary:
    """Parse the format described at the top of this module. Raises ``VocabularyError``."""
    default_templates: list[str] = []
    groups: list[dict[str, Any]] = []
    seen_names: dict[str, str] = {}

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        def fail(reason: str, number: int = number, line: str = line) -> VocabularyError:
            return VocabularyError(f"{source}, line {number}: {reason}: {line!r}")

        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                raise fail("a group header is a name in square brackets")
            name = " ".join(line[1:-1].split())
            if any(group["name"] == name for group in groups):
                raise fail(f"the group [{name}] appears twice")
            groups.append(
                {"name": name, "tags": [], "templates": [], "min_score": None, "line": number}
            )
            continue

        key, colon, value = (part.strip() for part in line.partition(":"))
        if colon and key == "template":
            if "{}" not in value or value.count("{") != 1 or value.count("}") != 1:
                raise fail("a template needs exactly one {}, where the phrase goes")
            (groups[-1]["templates"] if groups else default_templates).append(value)
            continue
        if colon and key == "min score":
            if not groups:
                raise fail("'min score' belongs inside a group")
            try:
                score = float(value)
            except ValueError:
                raise fail("'min score' needs a number between 0 and 1") from None
            if not 0 < score <= 1:
                raise fail("'min score' needs a number between 0 and 1")
            groups[-1]["min_score"] = score
            continue
        if not groups:
            raise fail("a tag must come after a [group] header")

        hidden = key.startswith("(") and key.endswith(")")
        name = " ".join((key[1:-1] if hidden else key).split())
        if not name or any(ch in name for ch in "[](){}|#"):
            raise fail("a tag name is a word or words, without brackets, braces, '|' or '#'")
        if len(name) > MAX_NAME_LENGTH:
            raise fail(f"a tag name has at most {MAX_NAME_LENGTH} characters")
        phrases = [" ".join(p.split()) for p in value.split("|")] if colon else [name]
        if any(not phrase for phrase in phrases):
            raise fail("a phrase is empty (two '|' in a row, or nothing after ':')")
        if any("{" in phrase or "}" in phrase for phrase in phrases):
            raise fail("a phrase may not contain braces")
        if any(tag.name == name for tag in groups[-1]["tags"]):
            raise fail(f"the tag {name!r} appears twice in [{groups[-1]['name']}]")
        if not hidden:
            if name in seen_names:
                raise fail(
                    f"the tag {name!r} is already in [{seen_names[name]}]; tag names are unique "
                    "across groups"
                )
            seen_names[name] = groups[-1]["name"]
        groups[-1]["tags"].append(Tag(name=name, phrases=tuple(phrases), hidden=hidden))

    if not groups:
        raise VocabularyError(f"{source}: no [group] with tags in the tag vocabulary")
    for group in groups:
        shown = [tag for tag in group["tags"] if not tag.hidden]
        if len(group["tags"]) < 2 or not shown:
            raise VocabularyError(
                f"{source}, line {group['line']}: the group [{group['name']}] needs at least two "
                "tags to compete, one of them not in parentheses"
            )
    templates = tuple(default_templates) or DEFAULT_TEMPLATES
    return TagVocabulary(
        groups=tuple(
            TagGroup(
                name=group["name"],
                tags=tuple(group["tags"]),
                templates=tuple(group["templates"]) or templates,
                min_score=group["min_score"],
            )
            for group in groups
        ),
        source=source,
    )


class Tagger:
    """A vocabulary's tag vectors under one model: turns image vectors into tags without the
    model. Build one with ``build_tagger`` (or the cached ``tagger_for``)."""

    def __init__(
        self, vocabulary: TagVocabulary, text_vectors: list[np.ndarray], logit_scale: float
    ):
        self.vocabulary = vocabulary
        self.text_vectors = text_vectors  # per group: (tags, dim), unit rows
        self.logit_scale = logit_scale

    def probabilities(self, image_vectors: np.ndarray) -> list[np.ndarray]:
        """Per group, an ``(n, tags)`` array: each photo's softmax over that group's tags."""
        images = np.asarray(image_vectors, dtype=np.float32)
        result = []
        for vectors in self.text_vectors:
            logits = self.logit_scale * (images @ vectors.T)
            logits -= logits.max(axis=1, keepdims=True)
            weights = np.exp(logits)
            result.append(weights / weights.sum(axis=1, keepdims=True))
        return result

    def tags(self, image_vectors: np.ndarray, *, min_score: float) -> list[Tags]:
        """Each photo's tags, best first: in every group, the tags whose probability among the
        group's tags is at least the group's minimum (``min_score`` unless it sets one)."""
        images = np.asarray(image_vectors, dtype=np.float32).reshape(-1, self.dim)
        result: list[Tags] = [[] for _ in range(len(images))]
        for group, probabilities in zip(
            self.vocabulary.groups, self.probabilities(images), strict=True
        ):
            minimum = group.min_score if group.min_score is not None else min_score
            for row, photo_tags in zip(probabilities, result, strict=True):
                photo_tags.extend(
                    (tag.name, float(p))
                    for tag, p in zip(group.tags, row, strict=True)
                    if p >= minimum and not tag.hidden
                )
        for photo_tags in result:
            photo_tags.sort(key=lambda item: (-item[1], item[0]))
        return result

    @property
    def dim(self) -> int:
        return int(self.text_vectors[0].shape[1])


def build_tagger(
    vocabulary: TagVocabulary,
    encode_texts: Callable[[Sequence[str]], np.ndarray],
    *,
    logit_scale: float,
) -> Tagger:
    """Encode every (template, phrase) text of ``vocabulary`` with ``encode_texts`` (unit rows
    out) and average them per tag. Costs one pass of the text tower over all those texts."""
    texts: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    for group in vocabulary.groups:
        group_spans = []
        for tag in group.tags:
            tag_texts = group.texts(tag)
            group_spans.append((len(texts), len(texts) + len(tag_texts)))
            texts.extend(tag_texts)
        spans.append(group_spans)
    encoded = np.concatenate(
        [
            np.asarray(encode_texts(texts[start : start + ENCODE_CHUNK]), dtype=np.float32)
            for start in range(0, len(texts), ENCODE_CHUNK)
        ]
    )
    encoded /= np.linalg.norm(encoded, axis=1, keepdims=True)
    per_group = []
    for group_spans in spans:
        means = np.stack([encoded[start:end].mean(axis=0) for start, end in group_spans])
        per_group.append(means / np.linalg.norm(means, axis=1, keepdims=True))
    return Tagger(vocabulary, per_group, logit_scale)


def logit_scale_of(model: Any) -> float:
    """The learned temperature of an open_clip model (``exp(logit_scale)``), as a float."""
    scale = getattr(model, "logit_scale", None)
    if scale is None:
        return DEFAULT_LOGIT_SCALE
    value = float(scale.exp().item()) if hasattr(scale, "exp") else math.exp(float(scale))
    return value if math.isfinite(value) and value > 0 else DEFAULT_LOGIT_SCALE


_cache_lock = threading.Lock()
_taggers: dict[tuple[str, str], Tagger] = {}
_on_disk: set[Path] = set()  # cache files this process has read or written


def tagger_for(
    engine: Any, vocabulary: TagVocabulary, *, cache_dir: str | Path | None = None
) -> Tagger:
    """The tagger of ``vocabulary`` under ``engine`` (a ``ClipEngine``), built once per process
    for each (model id, vocabulary digest).

    With ``cache_dir``, the tag vectors are also kept there, so that other processes (each
    Celery pool process, the next restart) read them instead of encoding the vocabulary again.
    A cache that cannot be read or written is skipped with a warning.
    """
    key = (engine.model_id, vocabulary.digest)
    path = _cache_path(cache_dir, *key) if cache_dir else None
    tagger = _taggers.get(key)
    if tagger is not None and (path is None or path in _on_disk):
        return tagger
    with _cache_lock:
        tagger = _taggers.get(key)
        if tagger is None and path is not None:
            tagger = _read_cached(path, vocabulary, engine.model_id)
            if tagger is not None:
                _on_disk.add(path)
        built = tagger is None
        if tagger is None:
            tagger = build_tagger(
                vocabulary, engine.encode_texts, logit_scale=logit_scale_of(engine.model)
            )
        _taggers[key] = tagger
        if path is not None and path not in _on_disk:
            # Also when this process built the tagger before it was asked to keep it there.
            if built or not path.is_file():
                _write_cached(path, tagger, engine.model_id)
            _on_disk.add(path)
    return tagger


def forget_taggers() -> None:
    """Empty the in-process cache (tests; a long-lived process after many vocabulary edits)."""
    with _cache_lock:
        _taggers.clear()
        _on_disk.clear()


def _cache_path(cache_dir: str | Path, model_id: str, digest: str) -> Path:
    name = hashlib.sha256(f"{model_id}\n{digest}".encode()).hexdigest()[:32]
    return Path(cache_dir) / f"{name}.npz"


def _read_cached(path: Path, vocabulary: TagVocabulary, model_id: str) -> Tagger | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["model_id"]) != model_id or str(stored["digest"]) != vocabulary.digest:
                return None
            vectors = [stored[f"group{index}"] for index in range(len(vocabulary.groups))]
            logit_scale = float(stored["logit_scale"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring the cached tag vectors in %s: %s", path, exc)
        return None
    if [len(v) for v in vectors] != [len(group.tags) for group in vocabulary.groups]:
        return None
    return Tagger(vocabulary, [v.astype(np.float32, copy=False) for v in vectors], logit_scale)


def _write_cached(path: Path, tagger: Tagger, model_id: str) -> None:
    # Written under a temporary name and renamed: a reader never sees half a file.
    partial = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.partial.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            partial,
            model_id=np.array(model_id),
            digest=np.array(tagger.vocabulary.digest),
            logit_scale=np.array(tagger.logit_scale),
            **{f"group{index}": vectors for index, vectors in enumerate(tagger.text_vectors)},  # type: ignore[arg-type]
        )
        os.replace(partial, path)
    except OSError as exc:
        logger.warning("could not cache the tag vectors in %s: %s", path, exc)
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
