"""Intercross sampling rule, orthogonality loss math, classifier and gradient-reversal adversary."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from toonlab.tts.intercross import (
    AdversarialClassifier,
    AttributeClassifier,
    IntercrossSampler,
    SelfReference,
    crop_bounds,
    orthogonality_loss,
    reverse_gradient,
)

SPEAKERS, STYLES, SENTENCES = ["a", "b", "c"], ["calm", "sad", "loud"], ["s0", "s1", "s2", "s3"]


def crossed() -> tuple[list[dict[str, str]], list[str]]:
    rows = list(itertools.product(SPEAKERS, STYLES, SENTENCES))
    return [{"speaker": sp, "style": st} for sp, st, _ in rows], [s for *_, s in rows]


def test_sampler_invariants_on_a_crossed_corpus() -> None:
    labels, sentences = crossed()
    sampler = IntercrossSampler(labels, sentences, ["speaker", "style"])
    rng = random.Random(0)
    for target in range(len(labels)):
        for n, attr in enumerate(["speaker", "style"]):
            other = "style" if attr == "speaker" else "speaker"
            for _ in range(5):
                ref = sampler.sample(target, n, rng)
                assert ref != target
                assert labels[ref][attr] == labels[target][attr]  # shares attribute n
                assert labels[ref][other] != labels[target][other]  # differs in the other one
                assert sentences[ref] != sentences[target]  # different text
            # every allowed reference is a candidate: 2 other values x 3 other sentences
            assert len(sampler.candidates(target, n)) == 6


def test_sampler_falls_back_when_the_corpus_is_not_crossed() -> None:
    # speaker "a" only ever speaks calmly: its speaker reference cannot differ in style
    labels = [
        {"speaker": "a", "style": "calm"},
        {"speaker": "a", "style": "calm"},
        {"speaker": "b", "style": "calm"},
        {"speaker": "b", "style": "sad"},
        {"speaker": "c", "style": "sad"},
    ]
    sentences = ["s0", "s1", "s0", "s1", "s2"]
    sampler = IntercrossSampler(labels, sentences, ["speaker", "style"])
    assert sampler.candidates(0, 0) == [1]  # same speaker, same style: the best there is
    assert sampler.candidates(3, 0) == [2]  # speaker b, other style
    assert sampler.candidates(4, 0) == [4]  # the only utterance of speaker c: the target itself
    assert sampler.candidates(3, 1) == [4]  # style sad, another speaker, another sentence
    assert SelfReference().sample(3, 1, random.Random(0)) == 3


def test_crop_bounds() -> None:
    rng = random.Random(0)
    for _ in range(50):
        start, end = crop_bounds(300, 120, 240, rng)
        assert 0 <= start < end <= 300 and 120 <= end - start <= 240
    assert crop_bounds(80, 120, 240, rng) == (0, 80)


def test_orthogonality_loss_math() -> None:
    # centred columns that are orthogonal across the two embeddings -> zero
    h1 = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    h2 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [-1.0, -2.0]])
    assert orthogonality_loss([h1, h2]) == 0.0
    # hand-computed: h1 = [[1],[ -1]] centred stays, h2 = [[3],[1]] centres to [[1],[-1]]
    # H1^T H2 = 1*1 + (-1)(-1) = 2 -> ||.||_F^2 = 4 per ordered pair, 2 ordered pairs -> 8
    a = torch.tensor([[1.0], [-1.0]])
    b = torch.tensor([[3.0], [1.0]])
    assert orthogonality_loss([a, b]) == pytest.approx(8.0)
    # three embeddings: sum over all ordered pairs
    c = torch.tensor([[2.0], [0.0]])  # centres to [[1], [-1]]
    assert orthogonality_loss([a, b, c]) == pytest.approx(6 * 4.0)
    assert orthogonality_loss([a]) == 0.0
    # a constant offset does not matter (batch centring)
    assert orthogonality_loss([a + 5, b - 2]) == pytest.approx(8.0)


def test_orthogonality_loss_matches_frobenius_definition() -> None:
    g = torch.Generator().manual_seed(0)
    hs = [torch.randn(6, d, generator=g) for d in (3, 4)]
    c = [h - h.mean(0) for h in hs]
    expected = 2 * torch.linalg.matrix_norm(c[0].T @ c[1], "fro") ** 2
    assert orthogonality_loss(hs) == pytest.approx(float(expected), rel=1e-5)


def test_classifier_and_gradient_reversal() -> None:
    x = torch.randn(5, 4, requires_grad=True)
    reverse_gradient(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.5))
    labels = torch.tensor([0, 1, 2, 0, 1])
    loss, acc = AttributeClassifier(4, 3)(torch.randn(5, 4), labels)
    assert loss.ndim == 0 and 0.0 <= float(acc) <= 1.0
    # the adversary's own weights descend the loss, its input ascends it
    adv = AdversarialClassifier(0, "speaker", 4, 3)
    emb = torch.randn(5, 4, requires_grad=True)
    loss, _ = adv(emb, labels)
    loss.backward()
    eps = 1e-3
    with torch.no_grad():
        lower, _ = adv(emb + eps * emb.grad, labels)  # stepping along the (reversed) gradient lowers the loss
    assert float(lower) < float(loss.detach())
