"""The CLIP backends: fidelity to torch, the export cache, the parity gate and every fallback.

The demo model is exported once for the module (into a temporary cache, about half a minute);
ViT-B-32's export takes minutes on two cores, so its parity is measured by ``bench.backends``.
"""

import json

import numpy as np
import pytest
import torch

import workers.embedding.backends as backends
from tests.conftest import make_image
from tests.workers.embedding.vectors import assert_unit_length, cosines
from workers.embedding.model import (
    DEMO_MODEL_NAME,
    DEMO_PRETRAINED,
    ModelSpec,
    gpu_batch_size,
    load_engine,
    resolve_device,
)

DEMO = ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED)
IMAGES = [
    make_image(color="red", shape="circle"),
    make_image(color="blue", shape="square", background="yellow", size=(200, 300)),
    make_image(color="green", shape="triangle", background="black", size=(640, 480)),
]
TEXTS = ["a red circle", "a blue square on a yellow background", "green", "a photo " * 40]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("clip-export")


@pytest.fixture(scope="module")
def reference():
    engine = load_engine(DEMO)
    assert engine.backend.name == "torch"
    return engine.encode_images(IMAGES), engine.encode_texts(TEXTS)


@pytest.fixture(scope="module")
def exported(cache_dir):
    """The demo model exported and gated for both runtimes (and int8): the first load."""
    return load_engine(DEMO, backend="onnxruntime", export_cache_dir=cache_dir)


def entry_of(cache_dir):
    (entry,) = [path for path in cache_dir.iterdir() if path.is_dir()]
    return entry


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_each_backend_gives_torchs_vectors(exported, cache_dir, reference, name):
    engine = load_engine(DEMO, backend=name, export_cache_dir=cache_dir)

    images, texts = engine.encode_images(IMAGES), engine.encode_texts(TEXTS)

    assert engine.backend.name == name and engine.backend.reason == ""
    assert engine.model_id == exported.model_id  # the same vectors: the same index
    assert_unit_length(images)
    assert_unit_length(texts)
    assert cosines(images, reference[0]).min() >= 0.9999
    assert cosines(texts, reference[1]).min() >= 0.9999
    assert engine.backend.image_parity >= 0.9999 and engine.backend.text_parity >= 0.9999
    assert engine.backend.image_ms > 0 and engine.backend.text_ms > 0


def test_auto_picks_a_backend_that_passed_and_measures_them_all(exported, cache_dir):
    engine = load_engine(DEMO, backend="auto", export_cache_dir=cache_dir)

    tried = engine.backend.tried
    assert set(tried) == {"torch", "onnxruntime", "openvino"}
    images = min(("onnxruntime", "openvino"), key=lambda n: tried[n]["image_ms"])
    texts = min(("onnxruntime", "openvino"), key=lambda n: tried[n]["text_ms"])
    expected = images if images == texts else f"{images} (images) + {texts} (texts)"
    assert engine.backend.name == expected
    assert engine.backend.image_ms == tried[images]["image_ms"]


def test_a_second_start_reads_the_cache_instead_of_exporting(exported, cache_dir, monkeypatch):
    before = {path.name: path.stat().st_mtime_ns for path in entry_of(cache_dir).iterdir()}

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(backends, "_export", no_export)
    engine = load_engine(DEMO, backend="onnxruntime", export_cache_dir=cache_dir)

    assert engine.backend.name == "onnxruntime"
    after = {path.name: path.stat().st_mtime_ns for path in entry_of(cache_dir).iterdir()}
    assert after == before


def test_a_corrupt_cached_graph_is_detected_by_its_hash_and_rebuilt(exported, cache_dir, reference):
    entry = entry_of(cache_dir)
    text_graph = entry / "text.fp32.onnx"
    image_mtime = (entry / "image.fp32.onnx").stat().st_mtime_ns
    data = bytearray(text_graph.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # zeroed weights: still a valid file
    text_graph.write_bytes(bytes(data))

    engine = load_engine(DEMO, backend="onnxruntime", export_cache_dir=cache_dir)

    assert engine.backend.name == "onnxruntime"
    manifest = json.loads((entry / "manifest.json").read_text())["files"]
    assert text_graph.read_bytes() != bytes(data)
    assert manifest[text_graph.name] == backends._sha256(text_graph)
    assert (entry / "image.fp32.onnx").stat().st_mtime_ns == image_mtime  # only the bad one
    assert cosines(engine.encode_texts(TEXTS), reference[1]).min() >= 0.9999


def test_a_backend_that_cannot_export_falls_back_to_torch_with_the_reason(
    tmp_path, monkeypatch, reference
):
    def failing_export(model, tower, path):
        raise backends.BackendError(f"the {tower} tower could not be exported (OutOfMemoryError)")

    monkeypatch.setattr(backends, "_export", failing_export)
    engine = load_engine(DEMO, backend="openvino", export_cache_dir=tmp_path)

    assert engine.backend.name == "torch"
    assert engine.backend.reason == (
        "openvino: the image tower could not be exported (OutOfMemoryError); falling back to torch"
    )
    assert cosines(engine.encode_images(IMAGES), reference[0]).min() >= 0.99999


def test_a_corrupt_graph_the_runtime_cannot_load_falls_back_to_torch(
    exported, cache_dir, tmp_path, monkeypatch
):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a graph")
    monkeypatch.setattr(backends.ExportCache, "graphs", lambda self, model, **kw: (broken, broken))

    engine = load_engine(DEMO, backend="onnxruntime", export_cache_dir=cache_dir)

    assert engine.backend.name == "torch"
    assert engine.backend.reason.startswith("onnxruntime: ONNX Runtime could not load the graph (")


def test_a_backend_below_the_parity_floor_is_refused(exported, cache_dir, monkeypatch):
    monkeypatch.setitem(backends.PARITY_FLOOR, "fp32", 1.000001)  # no cosine reaches it

    engine = load_engine(DEMO, backend="onnxruntime", export_cache_dir=cache_dir)

    assert engine.backend.name == "torch"
    assert "onnxruntime: cosine to torch" in engine.backend.reason
    assert "is below 1.000001 on a probe" in engine.backend.reason


def test_a_backend_that_fails_while_encoding_falls_back_and_loses_no_photo(
    exported, cache_dir, reference
):
    engine = load_engine(DEMO, backend="onnxruntime", export_cache_dir=cache_dir)
    engine.runner.image = None  # the session is gone (what a crashed runtime looks like)

    images = engine.encode_images(IMAGES)

    assert engine.backend.name == "torch"
    assert (
        engine.backend.reason
        == "onnxruntime failed while encoding (AttributeError); fell back to torch"
    )
    assert cosines(images, reference[0]).min() >= 0.99999
    assert cosines(engine.encode_texts(TEXTS), reference[1]).min() >= 0.99999


def test_int8_is_its_own_model_id_and_stays_close_to_fp32(exported, cache_dir, reference):
    engine = load_engine(
        ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED, "int8"),
        backend="onnxruntime",
        export_cache_dir=cache_dir,
    )

    assert engine.backend.name == "onnxruntime" and engine.backend.precision == "int8"
    assert engine.model_id == exported.model_id + "+int8"
    assert (entry_of(cache_dir) / "image.int8.onnx").is_file()
    assert cosines(engine.encode_images(IMAGES), reference[0]).min() >= 0.99
    assert cosines(engine.encode_texts(TEXTS), reference[1]).min() >= 0.99


def test_int8_with_the_torch_backend_says_it_runs_fp32(reference):
    engine = load_engine(ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED, "int8"), backend="torch")

    assert engine.backend.name == "torch" and engine.backend.precision == "fp32"
    assert "int8 needs onnxruntime or openvino" in engine.backend.reason


@pytest.mark.parametrize(
    ("name", "pretrained"), [(DEMO_MODEL_NAME, DEMO_PRETRAINED), ("ViT-B-32", "")]
)
def test_text_cut_after_the_end_of_text_is_the_full_context_vector(name, pretrained):
    engine = load_engine(ModelSpec(name, pretrained))
    tokens = engine.tokenizer(TEXTS)
    with torch.inference_mode():
        full = engine.model.encode_text(tokens).numpy()

    short = backends.cut_tokens(tokens[:3], engine.model)

    assert short.shape[1] < tokens.shape[1]
    assert cosines(engine.encode_texts(TEXTS), full).min() >= 0.99999


def test_cuda_asked_for_without_a_gpu_runs_on_the_cpu_and_says_why(reference):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("cuda") == (
        "cpu",
        "cuda was asked for, but torch sees no CUDA device; running on the CPU",
    )

    engine = load_engine(DEMO, device="cuda", backend="torch")

    assert engine.device == "cpu"
    assert engine.backend.reason.startswith("cuda was asked for, but torch sees no CUDA device")
    assert cosines(engine.encode_images(IMAGES), reference[0]).min() >= 0.99999


def test_gpu_batches_are_sized_for_the_card_and_split_without_changing_vectors(reference):
    vit_b_32 = 87_849_216  # image tower parameters
    assert gpu_batch_size(80 * 2**30, vit_b_32) == 1024
    assert gpu_batch_size(8 * 2**30, vit_b_32) == 512
    assert gpu_batch_size(2**30, vit_b_32) == 64
    assert gpu_batch_size(10**6, vit_b_32) == 1

    engine = load_engine(DEMO)
    engine.max_batch = 2  # three images: two forward passes

    assert cosines(engine.encode_images(IMAGES), reference[0]).min() >= 0.999999


def test_an_unknown_backend_or_device_runs_torch_on_the_cpu_and_says_so():
    engine = load_engine(DEMO, backend="tensorrt", device="tpu")

    assert (engine.device, engine.backend.name) == ("cpu", "torch")
    assert "unknown device 'tpu'" in engine.backend.reason
    assert "unknown backend 'tensorrt'" in engine.backend.reason
    assert np.isfinite(engine.encode_texts(["a photo"])).all()
