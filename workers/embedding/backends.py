"""Runtimes for the CLIP towers: torch (the reference), ONNX Runtime and OpenVINO. Plain Python.

Both towers are exported once from the very open_clip model that ``create_model_and_transforms``
built (so any open_clip checkpoint works) to ONNX, and the graph is cached on local disk per
model id and weights digest (``ExportCache``). ONNX Runtime runs the file; OpenVINO compiles
the same file for its CPU plugin. Preprocessing stays open_clip's own: a backend only replaces
the forward pass.

Before a backend is used, ``choose_runner`` passes it through a parity gate: a fixed probe batch
of images and texts is encoded by the backend and by torch, and every probe must reach the
precision's cosine floor (``PARITY_FLOOR``). A backend that cannot be exported, loaded or run,
or that misses the floor, is skipped with the reason; torch is always there to fall back on.

torch, onnxruntime and openvino are imported inside functions (see ``model.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "openvino")
BACKEND_CHOICES = (*BACKENDS, "auto")
PRECISIONS = ("fp32", "int8")
# The least cosine to torch fp32 every probe must reach. fp32 backends compute the same
# function; int8 weights move vectors measurably (docs/PERFORMANCE.md has the recall cost).
PARITY_FLOOR = {"fp32": 0.9999, "int8": 0.99}
# Bump when the exported graph changes shape or meaning: old cache entries are then ignored.
EXPORT_FORMAT = 1
ONNX_OPSET = 18
# The batch the image graph is traced with; the batch axis stays dynamic.
_TRACE_BATCH = 2

PROBE_TEXTS = (
    "a photo",
    "a red circle",
    "two dogs playing in the snow",
    "a blue square on a yellow background",
    "a small white star at the top of a striped picture, next to a green cross",
    # Longer than any context: the tokenizer cuts it, and the cut must match torch's.
    " ".join(["a very long description of a crowded market street at dusk"] * 12),
)


class BackendError(RuntimeError):
    """A backend could not be exported, loaded or run; ``str(error)`` says which and why."""


class Runner(Protocol):
    """One runtime's forward pass of both towers: unnormalised float32 features out."""

    name: str
    precision: str

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray: ...

    def encode_tokens(self, tokens: np.ndarray) -> np.ndarray: ...


@dataclass
class BackendReport:
    """What the engine runs and why: shown on the dashboard, logged at load."""

    requested: str
    name: str = "torch"
    precision: str = "fp32"
    image_ms: float | None = None  # per image, batch of the probe images, this process's threads
    text_ms: float | None = None  # per query (one text)
    image_parity: float | None = None  # least cosine to torch fp32 over the probe images
    text_parity: float | None = None
    torch_image_ms: float | None = None  # the reference, measured in the same load
    torch_text_ms: float | None = None
    threads: int = 1
    reason: str = ""  # why the requested backend (or precision) is not the one in use
    # Every backend tried: name -> {"image_ms", "text_ms", "image_parity", "text_parity", "error"}
    tried: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        parts = [f"{self.name} {self.precision}"]
        if self.image_ms is not None and self.text_ms is not None:
            parts.append(f"{self.image_ms:.1f} ms per image, {self.text_ms:.1f} ms per query")
        if self.image_parity is not None and self.text_parity is not None:
            parts.append(f"cosine to torch ≥ {min(self.image_parity, self.text_parity):.6f}")
        return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Text: only the tokens up to the end of text


def truncation_of(model: Any) -> str | None:
    """How ``model``'s text tower may be cut after the end-of-text token, or None if it may not.

    open_clip's ``CLIP`` text tower is causal (its attention mask hides later positions) and
    pools the end-of-text position ("argmax": the token with the highest id; "eos": the
    tokenizer's end id), so positions after it cannot change the vector.
    """
    pool = getattr(model, "text_pool_type", None)
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    if pool not in ("argmax", "eos") or any(getattr(model, n, None) is None for n in needed):
        return None
    if pool == "eos" and getattr(model, "text_eos_id", None) is None:
        return None
    return str(pool)


def cut_tokens(tokens: Any, model: Any) -> Any:
    """``tokens`` (n, context) cut after the last end-of-text position of the batch (same type).

    The batch keeps one length: shorter texts are padded, which a causal tower ignores.
    """
    pool = truncation_of(model)
    if pool is None or tokens.shape[1] == 0:
        return tokens
    ends = tokens.argmax(-1) if pool == "argmax" else (tokens == model.text_eos_id).int().argmax(-1)
    length = max(int(ends.max()) + 1, 2)
    return tokens[:, :length]


def _text_module(model: Any) -> Any:
    """A module that encodes cut token batches as ``model.encode_text`` encodes full ones."""
    import torch

    pool = truncation_of(model)

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, text: torch.Tensor) -> torch.Tensor:
            clip = self.clip
            if pool is None:
                return clip.encode_text(text)
            length = text.shape[1]
            cast = clip.transformer.get_cast_dtype()
            x = clip.token_embedding(text).to(cast)
            x = x + clip.positional_embedding[:length].to(cast)
            x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
            x = clip.ln_final(x)
            if pool == "argmax":
                index = text.argmax(dim=-1)
            else:
                index = (text == clip.text_eos_id).int().argmax(dim=-1)
            x = x[torch.arange(x.shape[0], device=x.device), index]
            projection = clip.text_projection
            if projection is None:
                return x
            return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection

    return TextTower().eval()


def _image_module(model: Any) -> Any:
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.clip.encode_image(pixels)

    return ImageTower().eval()


def image_shape(model: Any) -> tuple[int, int]:
    size = getattr(model.visual, "image_size", 224)
    if isinstance(size, tuple | list):
        return int(size[0]), int(size[1])
    return int(size), int(size)


# ---------------------------------------------------------------------------------------------
# Runners


class TorchRunner:
    """open_clip's own forward pass; on CUDA under fp16/bf16 autocast when asked."""

    name = "torch"
    precision = "fp32"

    def __init__(self, model: Any, device: str = "cpu", autocast: str = "") -> None:
        self.model = model
        self.device = device
        self.autocast = autocast  # "", "fp16" or "bf16" (CUDA only)
        self.text = _text_module(model)
        if autocast:
            self.precision = autocast

    def _context(self) -> Any:
        import torch

        if not self.autocast:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.autocast == "fp16" else torch.bfloat16
        return torch.autocast(device_type=self.device.split(":")[0], dtype=dtype)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        batch = torch.from_numpy(pixels).to(self.device, non_blocking=True)
        with torch.inference_mode(), self._context():
            features = self.model.encode_image(batch)
        return features.float().cpu().numpy()

    def encode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        import torch

        batch = torch.from_numpy(tokens).to(self.device)
        with torch.inference_mode(), self._context():
            features = self.text(batch)
        return features.float().cpu().numpy()


class OnnxRuntimeRunner:
    name = "onnxruntime"

    def __init__(self, image_path: Path, text_path: Path, *, threads: int, precision: str):
        import onnxruntime as ort

        self.precision = precision
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning threads keep a core busy between runs; on a host shared with the web server
        # and other workers that core is someone else's (the lesson of MEDIASEARCH_TORCH_THREADS).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.image = ort.InferenceSession(
                str(image_path), options, providers=["CPUExecutionProvider"]
            )
            self.text = ort.InferenceSession(
                str(text_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise BackendError(
                f"ONNX Runtime could not load the graph ({type(exc).__name__})"
            ) from exc
        self._image_input = self.image.get_inputs()[0].name
        self._text_input = self.text.get_inputs()[0].name

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.image.run(None, {self._image_input: pixels})[0], np.float32)

    def encode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(self.text.run(None, {self._text_input: tokens})[0], np.float32)


class OpenVinoRunner:
    name = "openvino"

    def __init__(self, image_path: Path, text_path: Path, *, threads: int, precision: str):
        import openvino as ov

        self.precision = precision
        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": threads,
            # fp32 means fp32: on a CPU with bf16 or AMX the plugin would otherwise pick bf16.
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        try:
            self.image = core.compile_model(str(image_path), "CPU", config)
            self.text = core.compile_model(str(text_path), "CPU", config)
        except Exception as exc:  # RuntimeError from the plugin, with a long message
            raise BackendError(
                f"OpenVINO could not compile the graph ({type(exc).__name__})"
            ) from exc
        # An infer request is not safe to share between threads (a web process serves several
        # requests at once): one per thread.
        self._requests = threading.local()

    def _request(self, tower: str) -> Any:
        request = getattr(self._requests, tower, None)
        if request is None:
            request = getattr(self, tower).create_infer_request()
            setattr(self._requests, tower, request)
        return request

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return np.array(self._request("image").infer({0: pixels})[0], np.float32)

    def encode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return np.array(self._request("text").infer({0: tokens})[0], np.float32)


class SplitRunner:
    """Images on one runtime, texts on another (each tower on the faster of the two)."""

    def __init__(self, image: Runner, text: Runner) -> None:
        self.image, self.text = image, text
        self.name = f"{image.name} (images) + {text.name} (texts)"
        self.precision = image.precision

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self.image.encode_pixels(pixels)

    def encode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return self.text.encode_tokens(tokens)


# ---------------------------------------------------------------------------------------------
# The export cache


def weights_digest(model: Any) -> str:
    """A digest of every parameter and buffer of ``model``: equal digests, equal weights."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=_byte()).numpy())
    return digest.hexdigest()


def _byte() -> Any:
    import torch

    return torch.uint8


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ExportCache:
    """Exported graphs on local disk: ``root/<model>-<weights digest>/`` with a manifest that
    holds each file's SHA-256. A file that does not match is a corrupt entry: it is rebuilt.

    Local, not shared storage: each host exports for itself (a minute for ViT-B-32) and its
    processes share the result; a lock file keeps two processes from exporting at once.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def entry(self, model_id: str, digest: str) -> Path:
        import torch

        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)[:80]
        key = f"{model_id}\n{digest}\n{EXPORT_FORMAT}\n{ONNX_OPSET}\n{torch.__version__}"
        return self.root / f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    def graphs(
        self, model: Any, *, model_id: str, digest: str, precision: str
    ) -> tuple[Path, Path]:
        """The (image, text) graph files of ``model`` at ``precision``, exported (or quantised)
        now if the cache lacks them or holds a corrupt copy. Raises ``BackendError``."""
        directory = self.entry(model_id, digest)
        names = (f"image.{precision}.onnx", f"text.{precision}.onnx")
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            with _locked(directory.with_suffix(".lock")):
                manifest = self._verified(directory)
                missing = [name for name in names if name not in manifest]
                if missing:
                    started = time.perf_counter()
                    directory.mkdir(exist_ok=True)
                    self._build(model, directory, manifest, precision, model_id)
                    logger.info(
                        "exported %s (%s) to %s in %.1f s",
                        model_id,
                        precision,
                        directory,
                        time.perf_counter() - started,
                    )
        except OSError as exc:
            raise BackendError(f"the export cache {self.root} cannot be used: {exc}") from exc
        return directory / names[0], directory / names[1]

    def _verified(self, directory: Path) -> dict[str, str]:
        """The manifest's files whose hashes still match. A file that does not match (a disk
        error, a half-copied cache) is deleted, so that it is exported again."""
        manifest_path = directory / "manifest.json"
        try:
            listed = json.loads(manifest_path.read_text())["files"]
            if not isinstance(listed, dict):
                raise TypeError("files is not a mapping")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("the export manifest in %s is unreadable; exporting again", directory)
            shutil.rmtree(directory, ignore_errors=True)
            return {}
        good = {}
        for name, sha in listed.items():
            path = directory / str(name)
            if path.is_file() and _sha256(path) == sha:
                good[str(name)] = str(sha)
            else:
                logger.warning("the cached export %s is corrupt or missing; exporting again", path)
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
        return good

    def _build(
        self,
        model: Any,
        directory: Path,
        manifest: dict[str, str],
        precision: str,
        model_id: str,
    ) -> None:
        for tower in ("image", "text"):
            fp32 = directory / f"{tower}.fp32.onnx"
            if fp32.name not in manifest:
                _export(model, tower, fp32)
                manifest[fp32.name] = _sha256(fp32)
            int8 = directory / f"{tower}.int8.onnx"
            if precision == "int8" and int8.name not in manifest:
                _quantise(fp32, int8)
                manifest[int8.name] = _sha256(int8)
            # The manifest last, renamed into place: a reader never trusts half an entry.
            partial = directory / f"manifest.{os.getpid()}.partial"
            partial.write_text(json.dumps({"model_id": model_id, "files": manifest}, indent=1))
            os.replace(partial, directory / "manifest.json")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(model: Any, tower: str, path: Path) -> None:
    """Export one tower of ``model`` to ONNX at ``path`` (written under a temporary name)."""
    import torch

    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.onnx")
    batch = torch.export.Dim("batch", min=1, max=4096)
    if tower == "image":
        height, width = image_shape(model)
        module: Any = _image_module(model)
        example: Any = torch.zeros(_TRACE_BATCH, 3, height, width)
        shapes: Any = {"pixels": {0: batch}}
        names = ["pixels"]
    else:
        module = _text_module(model)
        context = int(model.positional_embedding.shape[0])
        if truncation_of(model) is not None:
            example = torch.ones(_TRACE_BATCH, min(8, context), dtype=torch.long)
            example[:, -1] = int(example.max()) + 1  # an end-of-text token at the end
            shapes = {"text": {0: batch, 1: torch.export.Dim("length", min=2, max=context)}}
        else:
            example = torch.ones(_TRACE_BATCH, context, dtype=torch.long)
            shapes = {"text": {0: batch}}
        names = ["tokens"]
    try:
        with torch.inference_mode(False), torch.no_grad(), _quiet_exporter():
            torch.onnx.export(
                module,
                (example,),
                str(partial),
                input_names=names,
                output_names=["features"],
                dynamic_shapes=shapes,
                opset_version=ONNX_OPSET,
                dynamo=True,
                external_data=False,
            )
        os.replace(partial, path)
    except Exception as exc:  # the exporter raises many kinds; the log has the whole story
        logger.warning("could not export the %s tower", tower, exc_info=True)
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise BackendError(
            f"the {tower} tower could not be exported ({type(exc).__name__})"
        ) from exc


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The exporter prints progress lines to stdout and logs every pass it runs at INFO;
    # workers log what they did, once.
    chatty = logging.getLogger("onnx_ir")
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            yield
    finally:
        chatty.setLevel(level)


def _quantise(fp32: Path, int8: Path) -> None:
    """Dynamic int8 weights (ONNX Runtime's ``quantize_dynamic``, QInt8) of ``fp32``."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        partial = int8.with_name(f"{int8.stem}.{os.getpid()}.partial.onnx")
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.WARNING)  # the quantiser logs every tensor it skips to the root
        try:
            quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        os.replace(partial, int8)
    except Exception as exc:
        logger.warning("could not quantise %s", fp32, exc_info=True)
        raise BackendError(
            f"the graph could not be quantised to int8 ({type(exc).__name__})"
        ) from exc


# ---------------------------------------------------------------------------------------------
# The parity gate and the choice


def probe_images(count: int = 4) -> list[Any]:
    """Fixed, detailed probe pictures (seeded noise and shapes): the same on every host."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(1717)
    images = []
    for index in range(count):
        small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((320, 240), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(image)
        for _ in range(2 + index):
            x, y, r = rng.uniform(0, 320), rng.uniform(0, 240), rng.uniform(15, 70)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        images.append(image)
    return images


@dataclass
class Probe:
    """The probe batch at the model's input, and torch fp32's vectors for it."""

    pixels: np.ndarray
    tokens: np.ndarray  # cut after the end of text
    images: np.ndarray  # unit rows
    texts: np.ndarray  # unit rows, from open_clip's full-context encode_text


def make_probe(model: Any, preprocess: Any, tokenizer: Any) -> Probe:
    import torch

    pixels = torch.stack([preprocess(image) for image in probe_images()])
    full = tokenizer(list(PROBE_TEXTS))
    with torch.inference_mode():
        images = model.encode_image(pixels).float().numpy()
        texts = model.encode_text(full).float().numpy()
    return Probe(
        pixels=pixels.numpy(),
        tokens=cut_tokens(full, model).numpy(),
        images=unit_rows(images),
        texts=unit_rows(texts),
    )


def unit_rows(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def _median_ms(run: Callable[[], Any], *, repeats: int, per: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times) / per


def gate(runner: Runner, probe: Probe, *, repeats: int = 3) -> dict[str, float]:
    """Encode the probe with ``runner``: its least cosines to torch fp32 and its speed."""
    images = unit_rows(runner.encode_pixels(probe.pixels))
    texts = unit_rows(runner.encode_tokens(probe.tokens))
    if images.shape != probe.images.shape or texts.shape != probe.texts.shape:
        raise BackendError(f"{runner.name} returned vectors of the wrong shape")
    one_query = probe.tokens[2:3]
    cut_query = one_query[:, : max(int(one_query.argmax(-1).max()) + 1, 2)]
    return {
        "image_parity": float(np.min(np.sum(images * probe.images, axis=1))),
        "text_parity": float(np.min(np.sum(texts * probe.texts, axis=1))),
        "image_ms": _median_ms(
            lambda: runner.encode_pixels(probe.pixels), repeats=repeats, per=len(probe.pixels)
        ),
        "text_ms": _median_ms(lambda: runner.encode_tokens(cut_query), repeats=2 * repeats, per=1),
    }


def choose_runner(
    model: Any,
    probe: Probe,
    *,
    requested: str,
    precision: str,
    device: str,
    threads: int,
    cache: ExportCache | None,
    model_id: str,
    autocast: str = "",
    candidates_override: Sequence[str] | None = None,
) -> tuple[Runner, BackendReport]:
    """The runner to encode with, and the report of how it was chosen. Never raises for a
    backend's failure: torch is the answer when nothing else passes."""
    report = BackendReport(requested=requested, threads=threads)
    torch_runner = TorchRunner(model, device, autocast)
    if requested not in BACKEND_CHOICES:
        report.reason = f"unknown backend {requested!r} (known: {', '.join(BACKEND_CHOICES)})"
        requested = "torch"
    if precision not in PRECISIONS:
        report.reason = f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})"
        precision = "fp32"

    measured = gate(torch_runner, probe, repeats=2)
    report.tried["torch"] = measured
    report.torch_image_ms, report.torch_text_ms = measured["image_ms"], measured["text_ms"]

    if candidates_override is not None:
        candidates = list(candidates_override)
    elif requested == "auto":
        candidates = ["openvino", "onnxruntime"]
    elif requested == "torch":
        candidates = []
        if precision == "int8":
            report.reason = "int8 needs onnxruntime or openvino (MEDIASEARCH_CLIP_BACKEND)"
    else:
        candidates = [requested]
    if candidates and not device.startswith("cpu"):
        report.reason = f"{', '.join(candidates)} run on the CPU only; {device} runs torch"
        candidates = []

    passed: list[tuple[float, Runner, dict[str, float]]] = []
    failures = []
    digest = weights_digest(model) if candidates and cache is not None else ""
    for name in candidates:
        try:
            if cache is None:
                raise BackendError("no export cache directory is set")
            image_path, text_path = cache.graphs(
                model, model_id=model_id, digest=digest, precision=precision
            )
            runner = _open_runner(name, image_path, text_path, threads, precision)
            result = gate(runner, probe)
        except BackendError as exc:
            failures.append(f"{name}: {exc}")
            report.tried[name] = {"error": str(exc)}
            continue
        except Exception as exc:  # a runtime's own error while running the probe
            logger.warning("%s failed on the probe batch", name, exc_info=True)
            failures.append(f"{name}: failed on the probe batch ({type(exc).__name__})")
            report.tried[name] = {"error": failures[-1]}
            continue
        report.tried[name] = result
        floor = PARITY_FLOOR[precision]
        worst = min(result["image_parity"], result["text_parity"])
        if worst < floor:
            failures.append(f"{name}: cosine to torch {worst:.6f} is below {floor} on a probe")
            continue
        passed.append((result["image_ms"] + result["text_ms"], runner, result))

    if not passed:
        if failures:
            report.reason = "; ".join(failures) + "; falling back to torch"
            logger.warning("CLIP backend: %s", report.reason)
        report.image_ms, report.text_ms = measured["image_ms"], measured["text_ms"]
        report.image_parity = report.text_parity = 1.0
        report.precision = torch_runner.precision
        return torch_runner, report

    # Each tower on its fastest runtime: a worker's cost is images, a web process's queries,
    # and the two runtimes do not rank the same for both (OpenVINO's dynamic text length).
    _, image_runner, image_result = min(passed, key=lambda item: item[2]["image_ms"])
    _, text_runner, text_result = min(passed, key=lambda item: item[2]["text_ms"])
    runner = image_runner if image_runner is text_runner else SplitRunner(image_runner, text_runner)
    report.name, report.precision = runner.name, runner.precision
    report.image_ms, report.text_ms = image_result["image_ms"], text_result["text_ms"]
    report.image_parity = image_result["image_parity"]
    report.text_parity = text_result["text_parity"]
    if failures and requested != "auto":
        report.reason = "; ".join(failures)
    logger.info("CLIP backend: %s", report.summary)
    return runner, report


def _open_runner(name: str, image: Path, text: Path, threads: int, precision: str) -> Runner:
    try:
        if name == "onnxruntime":
            return OnnxRuntimeRunner(image, text, threads=threads, precision=precision)
        if name == "openvino":
            return OpenVinoRunner(image, text, threads=threads, precision=precision)
    except ImportError as exc:
        raise BackendError(f"{name} is not installed ({exc.name})") from None
    raise BackendError(f"unknown backend {name!r}")
