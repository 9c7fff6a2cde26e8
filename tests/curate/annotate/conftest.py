"""Shared fixtures for the annotator tests: synthetic frames, a ShotView over them, tiny models, curated runs."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.records import Probe, Shot, SourceResult, VideoRef
from toonlab.curate.run import run_curate
from toonlab.curate.stages.annotate.base import ShotView

# Tiny tagger vocabulary: (name, category); 9 = rating, 0 = general, 4 = character (WD14 selected_tags.csv)
TAGS = [
    ("general", 9),
    ("sensitive", 9),
    ("questionable", 9),
    ("explicit", 9),
    ("red_theme", 0),
    ("blue_theme", 0),
    ("white_background", 0),
    ("hatsune_miku", 4),
]
# Logit = WEIGHTS^T (B, G, R)/255 + BIAS: pure red -> red_theme and "sensitive"; pure blue -> blue_theme and
# "general"; white -> white_background; cyan (G + B) -> hatsune_miku (a character, threshold 0.85).
WEIGHTS = np.array(
    [
        # general sensitive questionable explicit red blue white miku
        [5, 0, 0, 0, -12, 12, 12, 12],  # B
        [0, 0, 0, 0, -12, -12, 12, 12],  # G
        [0, 5, 0, 0, 12, -12, 12, -12],  # R
    ],
    np.float32,
)
BIAS = np.array([0, 0, 0, -5, -3, -3, -30, -18], np.float32)


def cartoon(h: int = 180, w: int = 320, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 RGB: flat sky with outlined flat-colour discs, like cel background art."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), (150, 190, 230), np.uint8)
    for _ in range(max(8, h * w // 4000)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre, radius = (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(4, max(6, h // 8)))
        cv2.circle(image, centre, radius, colour, -1)
        cv2.circle(image, centre, radius, (0, 0, 0), 2)
    return image


def view_of(images: list[np.ndarray], fps: int = 24, probe_size: tuple[int, int] | None = None) -> ShotView:
    """A ShotView over in-memory keyframes (one shot, one keyframe per frame), as the pipeline would build it."""
    h, w = images[0].shape[:2]
    width, height = probe_size or (w, h)
    probe = Probe("h264", width, height, Fraction(fps), len(images), 0, "0" * 64)
    shot = Shot(0, len(images), tuple(range(len(images))))
    result = SourceResult(VideoRef("mem", Path("mem.mp4")), "mem", probe, [shot], Path("/nonexistent"), {})
    return ShotView(result, 0, _decoded=dict(enumerate(images)))


@pytest.fixture(scope="session")
def make_view():
    return view_of


@pytest.fixture(scope="session")
def draw():
    return cartoon


@pytest.fixture(scope="session")
def bad_frames() -> dict[str, np.ndarray]:
    """Frames every annotator must survive: blank, black, tiny 8x8, huge 4000x3000."""
    return {
        "blank": np.full((120, 160, 3), 200, np.uint8),
        "black": np.zeros((120, 160, 3), np.uint8),
        "tiny": np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8),
        "huge": cartoon(3000, 4000, seed=9),
    }


def build_clip(folder: Path, **sizes) -> tuple[Path, Path]:
    """A CLIP vision model with random weights (CLIPVisionConfig(**sizes); no sizes: ViT-B/32) saved by transformers,
    plus a LAION-layout MLP for its projection: (clip_dir, mlp_path)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.CLIPVisionConfig(**sizes)
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(folder)
    side = config.image_size
    processor = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    )
    processor.save_pretrained(folder)
    torch.save(laion_mlp(config.projection_dim).state_dict(), folder / "mlp.pth")
    return folder, folder / "mlp.pth"


TINY_CLIP = dict(
    hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8,
    projection_dim=16,
)  # fmt: skip


@pytest.fixture(scope="session")
def clip_model(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny random CLIP vision model (transformers folder) and a LAION-layout MLP for it: (clip_dir, mlp_path)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_clip(tmp_path_factory.mktemp("aesthetic"), **TINY_CLIP)


def laion_mlp(dim: int):
    """The improved-aesthetic-predictor MLP (same module names, so the same state-dict keys), random weights."""
    from torch import nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2), nn.Linear(128, 64),
                nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
            )  # fmt: skip

        def forward(self, x):
            return self.layers(x)

    return MLP().eval()


def build_tagger(folder: Path, size: int = 64) -> Path:
    """A tiny WD14-layout tagger in `folder`: model.onnx (NHWC BGR size x size -> sigmoid of a linear map of the mean
    colour, WEIGHTS and BIAS above) and selected_tags.csv (TAGS)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["input_1"], ["mean"], axes=[1, 2], keepdims=0),  # (N, 3) BGR means
        helper.make_node("Mul", ["mean", "scale"], ["unit"]),  # /255
        helper.make_node("MatMul", ["unit", "weights"], ["logits0"]),
        helper.make_node("Add", ["logits0", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_tagger",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", len(TAGS)])],
        [
            numpy_helper.from_array(np.array([1 / 255], np.float32), "scale"),
            numpy_helper.from_array(WEIGHTS, "weights"),
            numpy_helper.from_array(BIAS, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    lines = ["tag_id,name,category,count"] + [f"{i},{name},{cat},{1000 - i}" for i, (name, cat) in enumerate(TAGS)]
    (folder / "selected_tags.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def tagger_dir(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    return build_tagger(tmp_path_factory.mktemp("tagger"))


MINE = ("text", "motion", "quality", "aesthetic", "tags")


def rows_of(out: Path) -> list[dict]:
    return ds.dataset(out / "metadata").to_table().to_pylist()


@pytest.fixture(scope="session")
def annotated_rows(tmp_path_factory, two_clips, clip_model, tagger_dir) -> list[dict]:
    """The two synthetic clips curated with all five image annotators (tiny models for aesthetic and tags)."""
    out = tmp_path_factory.mktemp("annotated")
    options = {"aesthetic": {"clip_dir": str(clip_model[0]), "mlp_path": str(clip_model[1])}}
    options["tags"] = {"model_dir": str(tagger_dir)}
    stats = run_curate([str(c.path) for c in two_clips], out, CurateConfig(annotate=MINE, annotator_options=options))
    assert stats["sources"]["failed"] == 0, stats["failed_by_stage"]
    return rows_of(out)


@pytest.fixture(scope="session")
def plain_rows(tmp_path_factory, two_clips) -> list[dict]:
    """The same clips curated with no annotator."""
    out = tmp_path_factory.mktemp("plain")
    run_curate([str(c.path) for c in two_clips], out)
    return rows_of(out)


@pytest.fixture(scope="session")
def check_columns(annotated_rows, plain_rows):
    """Assert an annotator's columns are filled (with its model id recorded) when it ran, and null when it did not."""

    def check(name: str) -> None:
        from toonlab.curate.stages.annotate import REGISTRY

        columns = [f.name for f in REGISTRY[name].columns]
        assert plain_rows and all(row[c] is None for row in plain_rows for c in columns)
        assert annotated_rows and all(row[c] is not None for row in annotated_rows for c in columns)
        assert all(name in dict(row["annotation_models"]) for row in annotated_rows)

    return check


@pytest.fixture(scope="session")
def make_mlp():
    return laion_mlp


@pytest.fixture(scope="session")
def stills(media_dir) -> dict[str, np.ndarray]:
    """Ren'Py "The Question" stills fetched by scripts/fetch_stills.sh: name -> (H, W, 3) uint8 RGB."""
    cv2 = pytest.importorskip("cv2")
    folder = media_dir.parent / "stills" / "the_question"
    files = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png"))
    if len(files) < 12:  # as for the clips: skipped locally, an error under CI
        message = f"stills missing in {folder}: run bash scripts/fetch_stills.sh"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return {f.stem: cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files}
