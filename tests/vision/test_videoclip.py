"""Video-CLIP and the classifier on tiny configs: shapes, gradients, the loss, one-batch overfitting."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from toonlab.vision.metrics import retrieval_per_query
from toonlab.vision.models import build_classifier, build_videoclip, get_config
from toonlab.vision.videoclip import contrastive_loss

B, N, SIZE = 4, 4, 32


def _batch(model, b=B, seed=0):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (b, N, 3, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    mask = torch.ones(b, N, dtype=torch.bool)
    h = model.video.prefix(frames.flatten(0, 1))
    return h.view(b, N, *h.shape[1:]), mask


@pytest.mark.parametrize("name", ["tiny-mean", "tiny-seq", "tiny-frozen"])
def test_shapes_and_every_trainable_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = build_videoclip(get_config(name))
    h, mask = _batch(model)
    captions = [f"caption {i}" for i in range(B)]
    video, text, scale = model(h, mask, model.text.prefix(captions))
    assert video.shape == text.shape == (B, 32)
    assert torch.allclose(video.norm(dim=1), torch.ones(B)) and torch.allclose(text.norm(dim=1), torch.ones(B))
    contrastive_loss(video, text, torch.arange(B), scale).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.values()), [
        n for n, p in trainable.items() if p.grad is None or p.grad.abs().sum() == 0
    ]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert (name == "tiny-frozen") == bool(frozen)


def test_masked_frames_do_not_change_the_embedding():
    torch.manual_seed(0)
    model = build_videoclip(get_config("tiny-seq")).eval()
    h, mask = _batch(model, b=2)
    mask[:, 2:] = False
    noisy = h.clone()
    noisy[:, 2:] = torch.randn_like(noisy[:, 2:])
    assert torch.allclose(model.embed_video(h, mask), model.embed_video(noisy, mask), atol=1e-5)


def test_mean_pooling_ignores_order_and_the_transformer_does_not():
    torch.manual_seed(0)
    mean, seq = build_videoclip(get_config("tiny-mean")).eval(), build_videoclip(get_config("tiny-seq")).eval()
    for model, invariant in ((mean, True), (seq, False)):
        h, mask = _batch(model, b=2)
        same = torch.allclose(model.embed_video(h, mask), model.embed_video(h.flip(1), mask), atol=1e-5)
        assert same == invariant


def test_loss_is_ln_b_for_equal_embeddings_and_clip_for_distinct_ids():
    e = torch.nn.functional.normalize(torch.ones(8, 16), dim=1)
    assert contrastive_loss(e, e, torch.arange(8), torch.tensor(10.0)).item() == pytest.approx(math.log(8), abs=1e-5)
    v, t = torch.nn.functional.normalize(torch.randn(2, 6, 16), dim=-1)
    logits = 5.0 * v @ t.T
    target = torch.arange(6)
    clip = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
    assert contrastive_loss(v, t, target, torch.tensor(5.0)).item() == pytest.approx(clip.item(), abs=1e-5)


def test_repeated_captions_are_positives():
    v = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    t = v.clone()
    t[1] = t[0]  # shots 0 and 1 share a caption
    ids = torch.tensor([0, 0, 1, 2])
    logits = 20.0 * v @ t.T
    targets = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    expected = (
        -(targets * logits.log_softmax(1)).sum(1).mean() - (targets * logits.T.log_softmax(1)).sum(1).mean()
    ) / 2
    assert contrastive_loss(v, t, ids, torch.tensor(20.0)).item() == pytest.approx(expected.item(), abs=1e-5)


def test_one_batch_overfit_reaches_r1_of_one_on_16_pairs():
    torch.manual_seed(0)
    model = build_videoclip(replace(get_config("tiny-seq"), n_frames=N))
    h, mask = _batch(model, b=16, seed=1)
    captions = [f"shot number {i} of sixteen" for i in range(16)]
    tokens = model.text.prefix(captions)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        video, text, scale = model(h, mask, tokens)
        loss = contrastive_loss(video, text, torch.arange(16), scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        video, text, _ = model(h, mask, tokens)
    per_query = retrieval_per_query((text @ video.T).numpy(), torch.eye(16, dtype=torch.bool).numpy())
    assert per_query["r1"].mean() == 1.0


def test_classifier_heads_shapes_and_gradients():
    torch.manual_seed(0)
    model = build_classifier(get_config("tiny-seq"), {"action": 3, "order": 2})
    h, mask = _batch(model)
    logits = model(h, mask)
    assert logits["action"].shape == (B, 3) and logits["order"].shape == (B, 2)
    sum(v.sum() for v in logits.values()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
