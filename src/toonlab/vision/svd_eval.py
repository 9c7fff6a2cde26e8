"""Evaluate an SVD fine-tuning run on held-out shots.

- Denoising loss on a fixed grid of 8 noise levels (the mid-quantiles of the training distribution), with noise
  drawn per clip from a seed of its key and the conditioning frame's noise fixed at its median sigma: the same
  numbers on every rerun, for the fine-tuned UNet and the base one side by side, with a paired bootstrap interval.
- Timing of generated clips (with real weights; any model runs it): each clip is generated from a held-out shot's
  first keyframe and measured by toonlab's keyframe rule (64x64 luma, SSIM < 0.95 to the previous frame is a new
  drawing) into ones / twos / threes / mixed / still and a dynamic score (drawings per frame), beside the real
  clips' timing from their metadata. The pixel measure is first checked on the real clips themselves, clean and
  with slight noise: its agreement with the metadata is reported with the verdict.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

from toonlab.curate.stages.analyze.keyframes import consecutive_ssim, dynamic_score, timing_label
from toonlab.vision.svd import COND_MEAN, Conditioning, SVDParts, denoising_loss, encode, generate, sigma_grid
from toonlab.vision.svd_train import SVDTrainConfig, clip_loader, motion_bucket, to_batch

KEYFRAME_SSIM = 0.95  # the Sakuga keyframe rule's threshold


def clip_seed(key: str) -> int:
    """A stable per-clip seed (str hashes are salted per process)."""
    return zlib.crc32(key.encode())


def _grid_conditioning(cond: Conditioning, index: int, k: int) -> Conditioning:
    """Clip ``index`` of a batch repeated k times (one per grid noise level)."""

    def pick(t):
        return t[index : index + 1].expand(k, *t.shape[1:])

    return Conditioning(pick(cond.latents), pick(cond.context), pick(cond.first_latents), pick(cond.time_ids))


@torch.no_grad()
def heldout_loss(
    parts: SVDParts, unets: dict, config: SVDTrainConfig, split: str = "test", max_clips: int = 64, k: int = 8
) -> dict:
    """Per UNet: the mean fixed-grid denoising loss on up to ``max_clips`` clips of ``split``, and by noise level."""
    device = next(parts.vae.parameters()).device
    grid = sigma_grid(k).to(device)
    losses: dict[str, list[torch.Tensor]] = {name: [] for name in unets}
    seen = 0
    for samples in clip_loader(config, split):
        batch = to_batch(samples, config, device)
        cond_sigma = torch.full((len(samples["key"]),), math.exp(COND_MEAN))
        seed = torch.Generator().manual_seed(clip_seed("".join(samples["key"])))  # the conditioning frame's noise
        cond = encode(parts, batch, cond_sigma, generator=seed, sample=False)
        for i, key in enumerate(samples["key"]):
            if seen >= max_clips:
                break
            one = _grid_conditioning(cond, i, k)
            noise = torch.randn(one.latents.shape, generator=torch.Generator().manual_seed(clip_seed(key)))
            for name, unet in unets.items():
                losses[name].append(denoising_loss(unet, one, grid, noise.to(device), reduce=False).cpu())  # (k,)
            seen += 1
    if not seen:
        raise ValueError(f"no held-out clips: the {split!r} split is empty")
    table = {name: torch.stack(rows) for name, rows in losses.items()}  # (clips, k)
    result = {
        "clips": seen,
        "split": split,
        "sigmas": [round(s, 4) for s in grid.tolist()],
        "loss": {name: t.mean().item() for name, t in table.items()},
        "loss_by_sigma": {name: t.mean(0).tolist() for name, t in table.items()},
    }
    if {"finetuned", "base"} <= set(table):
        diff = (table["finetuned"] - table["base"]).mean(1).numpy()  # (clips,)
        result["finetuned_minus_base"] = {"mean": float(diff.mean()), "ci95": paired_bootstrap(diff)}
    return result


def paired_bootstrap(diff: np.ndarray, resamples: int = 10_000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean of paired differences, resampling clips."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def pixel_timing(frames: torch.Tensor) -> tuple[str, float]:
    """(timing label, dynamic score) of a clip (F, 3, H, W) in [0, 1] by the keyframe rule on 64x64 luma."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32)[None, :, None, None]
    luma = (frames.float().clamp(0, 1) * weights).sum(1, keepdim=True) * 255  # (F, 1, H, W)
    small = F.interpolate(luma, size=(64, 64), mode="area")[:, 0].round().to(torch.uint8).numpy()
    ssim = consecutive_ssim(small)  # (F - 1,)
    keys = [0] + [i + 1 for i, s in enumerate(ssim) if s < KEYFRAME_SSIM]
    return timing_label(keys, len(frames)), dynamic_score(len(keys), len(frames))


def screen_timing(picks: list[int]) -> tuple[str, float]:
    """(timing label, dynamic score) from which drawing each frame shows (the metadata's answer)."""
    keys = [i for i in range(len(picks)) if i == 0 or picks[i] != picks[i - 1]]
    return timing_label(keys, len(picks)), dynamic_score(len(keys), len(picks))


def _summary(measures: list[tuple[str, float]]) -> dict:
    labels = Counter(label for label, _ in measures)
    return {"labels": dict(sorted(labels.items())), "dynamic_mean": float(np.mean([d for _, d in measures]))}


@torch.no_grad()
def generated_timing(
    parts: SVDParts, config: SVDTrainConfig, split: str = "test", clips: int = 16, steps: int = 25, seed: int = 0
) -> dict:
    """Timing of clips generated from held-out first keyframes beside the real clips', and the judge's check."""
    from PIL import Image

    noise = torch.Generator().manual_seed(seed)
    real, real_pixels, real_noisy, generated = [], [], [], []
    for samples in clip_loader(config, split):
        for frames, picks, row in zip(samples["frames"], samples["frame_indices"], samples["row"], strict=True):
            if len(generated) >= clips:
                break
            real.append(screen_timing(picks.tolist()))
            clean = frames.float() / 255  # (F, 3, H, W)
            real_pixels.append(pixel_timing(clean))
            real_noisy.append(pixel_timing(clean + torch.randn(clean.shape, generator=noise) * 2 / 255))
            first = Image.fromarray(frames[0].permute(1, 2, 0).numpy())
            fps = float(row.get("fps") or 24.0) / config.stride
            bucket = motion_bucket(row, config.motion_scale)
            clip = generate(parts, first, config.frames, config.size, fps, bucket, steps=steps, seed=seed)
            generated.append(pixel_timing(clip))
        if len(generated) >= clips:
            break
    if not generated:
        raise ValueError(f"no held-out clips: the {split!r} split is empty")
    agree = [np.mean([a[0] == b[0] for a, b in zip(real, m, strict=True)]) for m in (real_pixels, real_noisy)]
    return {
        "clips": len(generated),
        "real": _summary(real),
        "generated": _summary(generated),
        "judge": {"label_agreement_clean": float(agree[0]), "label_agreement_noisy": float(agree[1])},
    }
