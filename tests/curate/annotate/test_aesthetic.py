"""aesthetic: CLIP embedding -> LAION MLP end to end on a tiny CLIP and an MLP built here."""

from __future__ import annotations

import numpy as np
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.stages.annotate.aesthetic import AestheticAnnotator

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def annotator(clip_model) -> AestheticAnnotator:
    annotator = AestheticAnnotator(clip_dir=str(clip_model[0]), mlp_path=str(clip_model[1]))
    annotator.setup()
    return annotator


def test_matches_reference_computation(annotator, clip_model, make_mlp, draw, make_view):
    """The annotator's raw score equals the LAION recipe computed directly with the same files."""
    clip_dir, mlp_path = clip_model
    frames = [draw(seed=1), draw(200, 150, seed=2)]
    processor = transformers.CLIPImageProcessorPil.from_pretrained(clip_dir)
    model = transformers.CLIPVisionModelWithProjection.from_pretrained(clip_dir).eval()
    mlp = make_mlp(16)
    mlp.load_state_dict(torch.load(mlp_path, weights_only=True))
    with torch.no_grad():
        embeds = model(**processor(images=frames, return_tensors="pt")).image_embeds
        expected = mlp(embeds / embeds.norm(dim=-1, keepdim=True)).mean().item()
    values = annotator.annotate(make_view(frames))
    assert values["aesthetic_raw"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert values["aesthetic_score"] == pytest.approx(min(max((expected - 1) / 9, 0.0), 1.0), abs=1e-6)


def test_different_images_score_differently(annotator, draw, make_view):
    a = annotator.annotate(make_view([draw(seed=1)]))
    b = annotator.annotate(make_view([np.full((180, 320, 3), (250, 20, 20), np.uint8)]))
    assert 0.0 <= a["aesthetic_score"] <= 1.0 and 0.0 <= b["aesthetic_score"] <= 1.0
    assert abs(a["aesthetic_raw"] - b["aesthetic_raw"]) > 1e-4


@pytest.mark.parametrize(("raw", "score"), [(5.5, 0.5), (1.0, 0.0), (12.0, 1.0), (-3.0, 0.0)])
def test_one_to_ten_scale(tmp_path, clip_model, make_mlp, draw, make_view, raw, score):
    """An MLP whose output is the constant `raw`: the 1-10 scale maps to 0-1, clipped."""
    mlp = make_mlp(16)
    with torch.no_grad():
        for parameter in mlp.parameters():
            parameter.zero_()
        mlp.layers[7].bias.fill_(raw)
    torch.save(mlp.state_dict(), tmp_path / "constant.pth")
    annotator = AestheticAnnotator(clip_dir=str(clip_model[0]), mlp_path=str(tmp_path / "constant.pth"))
    values = annotator.annotate(make_view([draw(seed=3)]))
    assert values == pytest.approx({"aesthetic_score": score, "aesthetic_raw": raw})


def test_mlp_must_fit_the_embedding(tmp_path, clip_model, make_mlp):
    torch.save(make_mlp(32).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(ValueError, match="32-d embeddings"):
        AestheticAnnotator(clip_dir=str(clip_model[0]), mlp_path=str(tmp_path / "wide.pth")).setup()


def test_refuses_without_models(tmp_path):
    with pytest.raises(ValueError, match="clip_dir"):
        AestheticAnnotator()
    with pytest.raises(ValueError, match="config.json"):
        AestheticAnnotator(clip_dir=str(tmp_path), mlp_path=str(tmp_path / "mlp.pth"))
    with pytest.raises(ValueError, match="aesthetic needs local model files"):
        CurateConfig(annotate=("aesthetic",))


def test_bad_frames(annotator, bad_frames, make_view):
    values = annotator.annotate(make_view(list(bad_frames.values())[:2]))
    assert 0.0 <= values["aesthetic_score"] <= 1.0
    for frame in bad_frames.values():
        assert np.isfinite(annotator.annotate(make_view([frame]))["aesthetic_raw"])


def test_columns_in_dataset(check_columns):
    check_columns("aesthetic")
