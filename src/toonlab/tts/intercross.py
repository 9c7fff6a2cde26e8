"""Intercross training (Bian et al. 2019): the reference sampling rule and the style losses.

Sampling rule: for target y and sub-encoder n (attribute a_n), the reference r_n shares a_n with y and differs
from y in every other attribute where the corpus allows (most differing attributes first), on a different
sentence where possible, and is never y itself unless nothing else shares a_n. The only information sub-encoder n
can usefully pass to the decoder is then attribute a_n.

Losses on the sub-encoders' outputs (`IntercrossLoss`):
- classifier: per sub-encoder, one linear layer on its reference-encoder state predicting its own attribute (CE);
- orthogonality: sum over i != j of ||H_i^T H_j||_F^2, H_n the batch-centred (B, d_n) style embeddings;
- optional adversaries (Whitehill et al. 2019): `AdversarialClassifier` predicts another attribute from a
  sub-encoder's embedding through gradient reversal, pushing that attribute out of it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import permutations
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from toonlab.tts.style import SubEncoderOutput


class ReferenceSampler(Protocol):
    """Chooses the index of the reference utterance fed to sub-encoder `sub` for target utterance `target`."""

    def sample(self, target: int, sub: int, rng: random.Random) -> int: ...


class SelfReference:
    """The single-GST baseline: every sub-encoder sees the target itself."""

    def sample(self, target: int, sub: int, rng: random.Random) -> int:
        return target


class IntercrossSampler:
    """The paper's rule over a labelled pool of utterances (see the module docstring)."""

    def __init__(
        self,
        labels: Sequence[Mapping[str, str]],
        sentences: Sequence[str],
        sub_attributes: Sequence[str],
    ) -> None:
        if len(labels) != len(sentences):
            raise ValueError("one sentence id per utterance")
        self.labels, self.sentences, self.sub_attributes = list(labels), list(sentences), list(sub_attributes)
        self.groups: list[dict[str, list[int]]] = []
        for attr in self.sub_attributes:
            groups: dict[str, list[int]] = defaultdict(list)
            for i, lab in enumerate(self.labels):
                groups[lab[attr]].append(i)
            self.groups.append(groups)
        self._cache: dict[tuple[int, int], list[int]] = {}

    def candidates(self, target: int, sub: int) -> list[int]:
        """All equally good references for (target, sub-encoder)."""
        key = (target, sub)
        if key not in self._cache:
            attr = self.sub_attributes[sub]
            y = self.labels[target]
            others = [a for a in y if a != attr]
            pool = [i for i in self.groups[sub][y[attr]] if i != target] or [target]

            def score(i: int) -> tuple[int, int]:
                lab = self.labels[i]
                return sum(lab[a] != y[a] for a in others), int(self.sentences[i] != self.sentences[target])

            best = max(score(i) for i in pool)
            self._cache[key] = [i for i in pool if score(i) == best]
        return self._cache[key]

    def sample(self, target: int, sub: int, rng: random.Random) -> int:
        return rng.choice(self.candidates(target, sub))


def crop_bounds(length: int, min_frames: int, max_frames: int, rng: random.Random) -> tuple[int, int]:
    """A random [start, end) window of min..max frames (the whole utterance when it is shorter)."""
    if length <= min_frames:
        return 0, length
    size = rng.randint(min_frames, min(max_frames, length))
    start = rng.randint(0, length - size)
    return start, start + size


class AttributeClassifier(nn.Module):
    """One linear layer on a sub-encoder's reference-encoder state -> its attribute's classes."""

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(x)
        return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels).float().mean()


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: ANN001
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; gradient multiplied by -scale backward (Ganin & Lempitsky 2015)."""
    return _ReverseGradient.apply(x, scale)


class AdversarialClassifier(nn.Module):
    """Predicts `attribute` from sub-encoder `source`'s style embedding through gradient reversal: the
    classifier learns the attribute, the sub-encoder learns to hide it."""

    def __init__(self, source: int, attribute: str, in_dim: int, n_classes: int, scale: float = 1.0) -> None:
        super().__init__()
        self.source, self.attribute, self.scale = source, attribute, scale
        self.net = nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(), nn.Linear(in_dim, n_classes))

    def forward(self, style: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(reverse_gradient(style, self.scale))
        return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels).float().mean()


def orthogonality_loss(embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum_{i != j} ||H_i^T H_j||_F^2 over batch-centred (B, d_n) embeddings (ordered pairs: each pair twice)."""
    centred = [h - h.mean(dim=0, keepdim=True) for h in embeddings]
    total = embeddings[0].new_zeros(())
    for i, j in permutations(range(len(centred)), 2):
        total = total + (centred[i].T @ centred[j]).pow(2).sum()
    return total


class IntercrossLoss(nn.Module):
    """beta * sum_n CE_n + gamma * L_orth + delta * sum adversarial CE (each term logged on its own)."""

    def __init__(
        self,
        attributes: Sequence[str],
        classifiers: Mapping[str, AttributeClassifier],
        adversaries: Sequence[AdversarialClassifier] = (),
        cls_weight: float = 1.0,
        orth_weight: float = 0.02,
        adversarial_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.attributes = list(attributes)
        self.classifiers = nn.ModuleDict(classifiers)
        self.adversaries = nn.ModuleList(adversaries)
        self.cls_weight, self.orth_weight, self.adversarial_weight = cls_weight, orth_weight, adversarial_weight

    def forward(
        self, outs: Sequence[SubEncoderOutput], ref_labels: Sequence[Mapping[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """outs[n]: sub-encoder n's output; ref_labels[n][attr]: (B,) class ids of sub-encoder n's references.
        Returns the weighted `style_total` and each term."""
        losses: dict[str, torch.Tensor] = {}
        total = outs[0].style.new_zeros(())
        for n, attr in enumerate(self.attributes):
            if attr in self.classifiers:
                loss, acc = self.classifiers[attr](outs[n].reference, ref_labels[n][attr])
                losses[f"cls_{attr}"], losses[f"acc_{attr}"] = loss, acc
                total = total + self.cls_weight * loss
        if len(outs) > 1 and self.orth_weight > 0:
            losses["orth"] = orthogonality_loss([o.style for o in outs])
            total = total + self.orth_weight * losses["orth"]
        for adv in self.adversaries:
            name = f"{self.attributes[adv.source]}_hides_{adv.attribute}"
            loss, acc = adv(outs[adv.source].style, ref_labels[adv.source][adv.attribute])
            losses[f"adv_{name}"], losses[f"advacc_{name}"] = loss, acc
            total = total + self.adversarial_weight * loss
        losses["style_total"] = total
        return losses
