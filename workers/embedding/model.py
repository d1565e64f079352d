"""The CLIP embedding engine: open_clip loading and batch encoding. Plain Python, no Django.

torch and open_clip are imported inside functions: importing this module must stay cheap and
must never touch a GPU, because the Celery parent process imports it before forking workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

from workers.embedding.backends import (
    BackendReport,
    ExportCache,
    TorchRunner,
    choose_runner,
    cut_tokens,
    image_shape,
    make_probe,
    unit_rows,
)

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
    # "fp32" or "int8" (``backends.PRECISIONS``): int8 vectors get their own model id.
    precision: str = "fp32"

    def __str__(self) -> str:
        weights = self.pretrained or "random init"
        return (
            f"{self.name} ({weights}, int8)"
            if self.precision == "int8"
            else f"{self.name} ({weights})"
        )


@dataclass
class ClipEngine:
    """A loaded model with its preprocessing and tokenizer; encodes batches to unit vectors.

    The forward passes run on ``runner`` (torch, or a backend that passed the parity gate, see
    ``backends.py``); the torch model stays loaded, for the fallback and for the tagger.
    """

    spec: ModelSpec
    model_id: str
    dim: int
    device: str
    model: Any = field(repr=False)
    preprocess: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    # Set when this engine stands in for a configured model that could not be loaded.
    fallback_reason: str = ""
    runner: Any = field(default=None, repr=False)
    backend: BackendReport | None = None
    # Images per forward pass (0: the whole batch at once); sized for the card on a GPU.
    max_batch: int = 0
    _fallback_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.runner is None:
            self.runner = TorchRunner(self.model, self.device)
        if self.backend is None:
            self.backend = BackendReport(requested="torch")

    @property
    def is_demo(self) -> bool:
        return self.spec.name == DEMO_MODEL_NAME

    @property
    def input_side(self) -> int:
        """The side of the square the model sees; pictures larger than that are resized."""
        return max(image_shape(self.model))

    def encode_images(self, images: Sequence[Image]) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised image embeddings."""
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = self.max_batch or len(images)
        chunks = []
        for start in range(0, len(images), step):
            pixels = torch.stack([self.preprocess(image) for image in images[start : start + step]])
            chunks.append(self._run("encode_pixels", pixels.numpy()))
        return unit_rows(np.concatenate(chunks))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised text embeddings.

        Only the tokens up to the batch's last end-of-text token are encoded: the text tower is
        causal, so the padding after it cannot change the vector (``backends.cut_tokens``).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = cut_tokens(self.tokenizer(list(texts)), self.model)
        return unit_rows(self._run("encode_tokens", tokens.numpy()))

    def _run(self, method: str, array: np.ndarray) -> np.ndarray:
        runner = self.runner
        try:
            return np.asarray(getattr(runner, method)(array), dtype=np.float32)
        except Exception as exc:
            if isinstance(runner, TorchRunner):
                raise
            # A backend that fails at run time (out of memory, a plugin error) must not fail
            # the photo: torch computes the same vectors (the parity gate checked that).
            logger.warning(
                "%s failed while encoding; falling back to torch", runner.name, exc_info=True
            )
            with self._fallback_lock:
                if self.runner is runner:
                    self.runner = TorchRunner(self.model, self.device)
                    self.backend = BackendReport(
                        requested=self.backend.requested if self.backend else runner.name,
                        torch_image_ms=self.backend.torch_image_ms if self.backend else None,
                        torch_text_ms=self.backend.torch_text_ms if self.backend else None,
                        image_ms=self.backend.torch_image_ms if self.backend else None,
                        text_ms=self.backend.torch_text_ms if self.backend else None,
                        image_parity=1.0,
                        text_parity=1.0,
                        reason=f"{runner.name} failed while encoding ({type(exc).__name__}); "
                        "fell back to torch",
                    )
            return np.asarray(getattr(self.runner, method)(array), dtype=np.float32)


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
    backend: str = "torch",
    export_cache_dir: str | Path | None = None,
    threads: int | None = None,
    gpu_precision: str = "fp16",
) -> ClipEngine:
    """Load ``spec`` through open_clip's own factory, as published checkpoints are loaded.

    ``models_dir``: where checkpoint files may come from, as in ``check_spec`` (``None``:
    anywhere). ``backend``: torch, onnxruntime, openvino or auto (``backends.py``); a backend
    other than torch is exported into ``export_cache_dir`` and must pass the parity gate, else
    the engine runs torch and ``engine.backend.reason`` says why. ``device``: "cpu" or "cuda"
    (a CUDA device that is not there falls back to the CPU, with the reason); on CUDA the
    forward pass runs under ``gpu_precision`` autocast ("fp16", "bf16" or "fp32").
    Raises ``ModelLoadError`` when ``check_spec`` refuses ``spec`` or the weights
    cannot be had (no network for hub weights, a corrupt file); its message never quotes a
    file's contents (the log has the full error). Never raises for a backend's failure.
    """
    import open_clip
    import torch

    device, device_reason = resolve_device(device)
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
    model_id = model_id_for(spec, weights.value)
    on_gpu = device.startswith("cuda")
    autocast = gpu_precision if on_gpu and gpu_precision in ("fp16", "bf16") else ""
    if on_gpu:
        runner: Any = TorchRunner(model, device, autocast)
        report = BackendReport(requested=backend, precision=runner.precision)
        if backend not in ("torch", "auto") or spec.precision != "fp32":
            report.reason = f"on {device} the engine runs torch {runner.precision}"
    else:
        probe = make_probe(model, preprocess, tokenizer)
        runner, report = choose_runner(
            model,
            probe,
            requested=backend,
            precision=spec.precision,
            device=device,
            threads=threads or torch.get_num_threads(),
            cache=ExportCache(export_cache_dir) if export_cache_dir else None,
            # One cache entry for both precisions: int8 is quantised from the fp32 export.
            model_id=model_id_for(dataclasses.replace(spec, precision="fp32"), weights.value),
        )
    if device_reason:
        report.reason = "; ".join(filter(None, [device_reason, report.reason]))
    engine = ClipEngine(
        spec=spec,
        model_id=model_id,
        dim=dim,
        device=device,
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        runner=runner,
        backend=report,
        max_batch=cuda_batch_size(model, device) if on_gpu else 0,
    )
    logger.info(
        "loaded CLIP model %s as %s (%d dimensions, %s, %s)",
        spec,
        engine.model_id,
        dim,
        device,
        report.summary,
    )
    return engine


def resolve_device(device: str) -> tuple[str, str]:
    """The device to run on, and why it is not the one asked for ("" when it is).

    A CUDA device that torch cannot see (no GPU, no CUDA build of torch, a bad index) falls
    back to the CPU: photos still get their vectors, slower.
    """
    device = (device or "cpu").strip().lower()
    if not device.startswith("cuda"):
        return ("cpu", "") if device == "cpu" else ("cpu", f"unknown device {device!r}; using cpu")
    import torch

    if not torch.cuda.is_available():
        return "cpu", f"{device} was asked for, but torch sees no CUDA device; running on the CPU"
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return "cpu", f"{device} was asked for, but there are {torch.cuda.device_count()} GPUs"
    return device, ""


# Bytes of activations per image per forward pass, per million parameters of the image tower,
# at half precision (measured for ViT-B-32: about 6 MB an image); the batch fills at most half
# of the free memory, so that decoding, the text tower and other processes keep room.
_ACTIVATION_BYTES_PER_MPARAM = 70_000
MAX_GPU_BATCH = 1024


def gpu_batch_size(free_bytes: int, image_tower_params: int) -> int:
    """Images per forward pass on a card with ``free_bytes`` free: a power of two, 1 to 1024."""
    per_image = max(1, image_tower_params // 1_000_000) * _ACTIVATION_BYTES_PER_MPARAM
    fits = max(1, (free_bytes // 2) // per_image)
    return int(min(MAX_GPU_BATCH, 1 << (fits.bit_length() - 1)))


def cuda_batch_size(model: Any, device: str) -> int:
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    params = sum(p.numel() for p in model.visual.parameters())
    return gpu_batch_size(free, params)


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
    spec: ModelSpec, *, device: str = "cpu", cache_dir: str | None = None, **options: Any
) -> ClipEngine:
    """Load ``spec``; if that fails, load the shipped demo model and record why.

    ``options`` go to ``load_engine`` (backend, export cache, threads). Raises
    ``ModelLoadError`` only when the demo model cannot be loaded either.
    """
    try:
        return load_engine(spec, device=device, cache_dir=cache_dir, **options)
    except ModelLoadError as exc:
        demo = ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED, spec.precision)
        if spec == demo:
            raise
        logger.warning("%s; falling back to the shipped demo model", exc)
        engine = load_engine(demo, device=device, **options)
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
    """The id stored next to every vector: vectors of different ids never share an index.

    int8 vectors are not fp32 vectors (cosine about 0.999 between them): their id says int8.
    """
    suffix = "+int8" if spec.precision == "int8" else ""
    if not pretrained_path_or_tag:
        return f"{spec.name}/random-{RANDOM_INIT_SEED}{suffix}"
    path = Path(pretrained_path_or_tag)
    if path.is_file():
        # Two files with the same name are still different weights.
        return f"{spec.name}/{path.stem}-{_file_digest(path)[:12]}{suffix}"
    return f"{spec.name}/{pretrained_path_or_tag}{suffix}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
