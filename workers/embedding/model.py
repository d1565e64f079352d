"""The CLIP embedding engine: open_clip loading and batch encoding. Plain Python, no Django.

torch and open_clip are imported inside functions: importing this module must stay cheap and
must never touch a GPU, because the Celery parent process imports it before forking workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_CONFIG_DIR = DEMO_DIR / "model_configs"
DEMO_MODEL_NAME = "MediaSearch-Demo"
DEMO_WEIGHTS = DEMO_DIR / "mediasearch-demo.safetensors"
# The shipped demo weights are asked for with this pretrained value.
DEMO_PRETRAINED = "demo"
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
# Weights from a model hub repository: "hf-hub:organisation/repository".
HF_HUB_PREFIX = "hf-hub:"
_HUB_REPOSITORY = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Weights initialised from a fixed seed: every process builds the same model.
RANDOM_INIT_SEED = 0

_registry_lock = threading.Lock()
_demo_registered = False


class ModelLoadError(RuntimeError):
    """The configured model or its weights could not be loaded."""


@dataclass(frozen=True)
class ModelSpec:
    """Which open_clip model to run.

    ``pretrained`` is one of open_clip's pretrained tags for the architecture (downloaded from
    the model hub), ``hf-hub:organisation/repository`` (the open_clip weights file of that hub
    repository), a checkpoint file, ``"demo"`` for the shipped demo weights, or ``""`` for a
    seeded random initialisation (fidelity tests, development). ``check_spec`` says which.
    """

    name: str
    pretrained: str = ""

    def __str__(self) -> str:
        return f"{self.name} ({self.pretrained or 'random init'})"


@dataclass
class ClipEngine:
    """A loaded model with its preprocessing and tokenizer; encodes batches to unit vectors."""

    spec: ModelSpec
    model_id: str
    dim: int
    device: str
    model: Any = field(repr=False)
    preprocess: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    # Set when this engine stands in for a configured model that could not be loaded.
    fallback_reason: str = ""

    @property
    def is_demo(self) -> bool:
        return self.spec.name == DEMO_MODEL_NAME

    @property
    def input_side(self) -> int:
        """The side of the square the model sees; pictures larger than that are resized."""
        size = getattr(self.model.visual, "image_size", 224)
        return int(max(size) if isinstance(size, tuple | list) else size)

    def encode_images(self, images: Sequence[Image]) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised image embeddings."""
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        with torch.inference_mode():
            features = self.model.encode_image(batch)
        return _normalised(features)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised text embeddings."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            features = self.model.encode_text(tokens)
        return _normalised(features)


def _normalised(features: Any) -> np.ndarray:
    import torch

    features = torch.nn.functional.normalize(features.float(), dim=-1)
    return features.cpu().numpy().astype(np.float32, copy=False)


def register_demo_config() -> None:
    """Make the demo architecture known to open_clip, like any built-in model config."""
    global _demo_registered
    import open_clip

    with _registry_lock:
        if not _demo_registered:
            open_clip.add_model_config(DEMO_CONFIG_DIR)
            _demo_registered = True


@dataclass(frozen=True)
class Weights:
    """Where ``check_spec`` found a spec's weights."""

    kind: Literal["random", "tag", "hub", "file"]
    value: str = ""  # the tag, the hub repository, or the checkpoint's absolute resolved path
    shown_as: str = ""  # how messages name a file: never a path the caller did not give


def check_spec(spec: ModelSpec, *, models_dir: str | Path | None = None) -> Weights:
    """Check that ``spec`` names an architecture and weights this engine may load; loads nothing.

    With ``models_dir`` (a model chosen on the dashboard), a checkpoint must be a file inside
    that directory (named relative to it, or by an absolute path; links are followed and must
    stay inside), and a refusal never tells whether a path outside it exists. Without it (the
    operator's own configuration) a checkpoint may be any file. Returns the ``Weights`` to load.
    Raises ``ModelLoadError`` with a reason fit to show the person who chose the model.
    """
    import open_clip

    register_demo_config()
    name, pretrained = spec.name, spec.pretrained
    if name not in open_clip.list_models():
        raise ModelLoadError(f"open_clip knows no model called {name!r}")
    if not pretrained:
        return Weights("random")
    if pretrained == DEMO_PRETRAINED:
        if name != DEMO_MODEL_NAME:
            raise ModelLoadError(f"the demo weights are for {DEMO_MODEL_NAME}, not for {name}")
        if not DEMO_WEIGHTS.is_file():
            raise ModelLoadError(f"the demo weights are missing: {DEMO_WEIGHTS}")
        return Weights("file", str(DEMO_WEIGHTS), DEMO_PRETRAINED)
    if pretrained.startswith(HF_HUB_PREFIX):
        repository = pretrained.removeprefix(HF_HUB_PREFIX)
        if not _HUB_REPOSITORY.fullmatch(repository):
            raise ModelLoadError(
                f"a hub id is {HF_HUB_PREFIX}organisation/repository, not {pretrained!r}"
            )
        return Weights("hub", pretrained)
    tags = open_clip.list_pretrained_tags_by_model(name)
    if name == DEMO_MODEL_NAME:
        tags = [DEMO_PRETRAINED, *tags]
    if pretrained in tags:
        return Weights("tag", pretrained)

    looks_like_path = (
        os.sep in pretrained
        or "/" in pretrained
        or pretrained.startswith((".", "~"))
        or Path(pretrained).suffix in CHECKPOINT_SUFFIXES
    )
    if models_dir is None:
        try:
            path = Path(pretrained).expanduser().resolve()
            if path.is_file():
                return Weights("file", str(path), pretrained)
        except (OSError, ValueError):  # a NUL byte, a name too long: no file is called that
            path = None
        if looks_like_path or path is None:
            raise ModelLoadError(f"no checkpoint file at {pretrained}")
    else:
        root = Path(models_dir).resolve()
        outside = ModelLoadError(
            f"checkpoint files are loaded only from the models directory, {root} "
            "(MEDIASEARCH_MODELS_DIR)"
        )
        # Outside by its name alone, before the file system is asked anything about it: the
        # same words whether or not such a file exists, nothing to learn about the server.
        if not Path(os.path.normpath(root / pretrained)).is_relative_to(root):
            raise outside
        try:
            path = (root / pretrained).resolve()
            inside = path.is_relative_to(root)  # not through a link out of the folder
            is_file = inside and path.is_file()
        except (OSError, ValueError):
            raise ModelLoadError(f"no checkpoint file can be called {pretrained!r}") from None
        if not inside:
            raise outside
        shown_as = str(path.relative_to(root))
        if is_file:
            return Weights("file", str(path), shown_as)
        if looks_like_path:
            raise ModelLoadError(f"no checkpoint file {shown_as} in the models directory, {root}")
    raise ModelLoadError(
        f"unknown pretrained tag {pretrained!r} for {name}; "
        + (f"known tags: {', '.join(tags)}" if tags else f"{name} has no pretrained tags")
        + f" (or {HF_HUB_PREFIX}organisation/repository, or a checkpoint file)"
    )


def load_engine(
    spec: ModelSpec,
    *,
    device: str = "cpu",
    cache_dir: str | None = None,
    models_dir: str | Path | None = None,
) -> ClipEngine:
    """Load ``spec`` through open_clip's own factory, as published checkpoints are loaded.

    ``models_dir``: where checkpoint files may come from, as in ``check_spec`` (``None``:
    anywhere). Raises ``ModelLoadError`` when ``check_spec`` refuses ``spec`` or the weights
    cannot be had (no network for hub weights, a corrupt file); its message never quotes a
    file's contents (the log has the full error).
    """
    import open_clip
    import torch

    try:
        weights = check_spec(spec, models_dir=models_dir)
    except ModelLoadError as exc:
        raise ModelLoadError(f"could not load {spec}: {exc}") from None
    needs_hub = weights.kind in ("tag", "hub")
    offline = False
    try:
        with (
            _offline_unless_hub_reachable(needs_hub) as offline,
            torch.random.fork_rng(devices=[]),
        ):
            pretrained = weights.value or None
            if weights.kind == "hub":
                from open_clip.pretrained import download_pretrained_from_hf

                repository = weights.value.removeprefix(HF_HUB_PREFIX)
                pretrained = download_pretrained_from_hf(repository, cache_dir=cache_dir)
            torch.manual_seed(RANDOM_INIT_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.name, pretrained=pretrained, device=device, cache_dir=cache_dir
            )
    except Exception as exc:  # open_clip raises RuntimeError, OSError, hub and safetensors errors
        logger.warning("could not load %s", spec, exc_info=True)
        reason = _load_failure(spec, weights, exc, offline)
        raise ModelLoadError(f"could not load {spec}: {reason}") from exc
    model.eval()
    tokenizer = open_clip.get_tokenizer(spec.name)
    with torch.inference_mode():
        dim = int(model.encode_text(tokenizer(["a photo"]).to(device)).shape[-1])
    engine = ClipEngine(
        spec=spec,
        model_id=model_id_for(spec, weights.value),
        dim=dim,
        device=device,
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
    )
    logger.info(
        "loaded CLIP model %s as %s (%d dimensions, %s)", spec, engine.model_id, dim, device
    )
    return engine


def _load_failure(spec: ModelSpec, weights: Weights, exc: Exception, offline: bool) -> str:
    """Why a load failed, in words that quote neither the file nor the error's text, which can
    hold both (the unpickler names the bytes it could not read)."""
    if offline:
        return "the model hub cannot be reached and these weights are not in the local cache"
    kind = type(exc).__name__
    if weights.kind == "file":
        return f"{weights.shown_as} is not a checkpoint of {spec.name} open_clip can load ({kind})"
    if weights.kind in ("tag", "hub"):
        return f"the weights could not be fetched from the model hub or loaded ({kind})"
    return f"open_clip could not build {spec.name} ({kind})"


def load_engine_with_fallback(
    spec: ModelSpec, *, device: str = "cpu", cache_dir: str | None = None
) -> ClipEngine:
    """Load ``spec``; if that fails, load the shipped demo model and record why.

    Raises ``ModelLoadError`` only when the demo model cannot be loaded either.
    """
    try:
        return load_engine(spec, device=device, cache_dir=cache_dir)
    except ModelLoadError as exc:
        demo = ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED)
        if spec == demo:
            raise
        logger.warning("%s; falling back to the shipped demo model", exc)
        engine = load_engine(demo, device=device)
        engine.fallback_reason = str(exc)
        return engine


@contextlib.contextmanager
def _offline_unless_hub_reachable(needs_hub: bool) -> Iterator[bool]:
    """Run a hub load in huggingface_hub's offline mode when the hub cannot be reached.

    Offline, the hub client retries each file for about a minute before looking in its cache;
    in offline mode it answers from the cache (or fails) at once.
    """
    import huggingface_hub.constants as hub_constants

    if not needs_hub or hub_constants.HF_HUB_OFFLINE or _hub_reachable():
        yield bool(needs_hub and hub_constants.HF_HUB_OFFLINE)
        return
    logger.info("model hub unreachable: loading from the local cache only")
    with _registry_lock:
        hub_constants.HF_HUB_OFFLINE = True
        try:
            yield True
        finally:
            hub_constants.HF_HUB_OFFLINE = False


def _hub_reachable(timeout: float = 3.0) -> bool:
    import huggingface_hub.constants as hub_constants

    endpoint = urlsplit(hub_constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def model_id_for(spec: ModelSpec, pretrained_path_or_tag: str) -> str:
    """The id stored next to every vector: vectors of different ids never share an index."""
    if not pretrained_path_or_tag:
        return f"{spec.name}/random-{RANDOM_INIT_SEED}"
    path = Path(pretrained_path_or_tag)
    if path.is_file():
        # Two files with the same name are still different weights.
        return f"{spec.name}/{path.stem}-{_file_digest(path)[:12]}"
    return f"{spec.name}/{pretrained_path_or_tag}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
