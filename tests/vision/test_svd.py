"""SVD fine-tuning on a tiny model with the real architecture: EDM identities, freezing, learning, saving, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from toonlab.vision.svd import (  # noqa: E402
    Conditioning,
    SVDBatch,
    denoise,
    denoising_loss,
    edm_scalings,
    encode,
    generate,
    load_svd,
    sample_sigmas,
    select_trainable,
    sigma_grid,
    svd_scheduler,
    tiny_svd,
    training_loss,
)


def batch(n: int = 2, frames: int = 4, seed: int = 0) -> SVDBatch:
    g = torch.Generator().manual_seed(seed)
    return SVDBatch(
        frames=torch.rand(n, frames, 3, 32, 32, generator=g) * 2 - 1,
        fps=torch.full((n,), 12.0),
        motion_bucket=torch.full((n,), 127),
    )


def test_edm_identities():
    sigma = torch.logspace(-3, 3, 50, dtype=torch.float64)
    s = edm_scalings(sigma)
    torch.testing.assert_close(s.c_in.square() * (sigma.square() + 1), torch.ones_like(sigma))  # unit-variance input
    torch.testing.assert_close(s.c_skip + s.c_out.square(), torch.ones_like(sigma))  # unit-variance target
    torch.testing.assert_close(s.weight, 1 / s.c_out.square())
    torch.testing.assert_close(s.c_noise, sigma.log() / 4)


def test_edm_scalings_match_svd_scheduler():
    """Our preconditioning is the one diffusers' Euler scheduler applies at sampling time."""
    scheduler = svd_scheduler()
    scheduler.set_timesteps(5)
    sigmas = scheduler.sigmas[:-1]  # the last is 0
    torch.testing.assert_close(scheduler.timesteps, edm_scalings(sigmas).c_noise)
    x, out = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    for t, sigma in zip(scheduler.timesteps, sigmas, strict=True):
        s = edm_scalings(sigma)
        torch.testing.assert_close(scheduler.scale_model_input(x, t), s.c_in * x)
        scheduler._step_index = None  # the scheduler finds its step from the timestep
        step = scheduler.step(out, t, x)
        torch.testing.assert_close(step.pred_original_sample, s.c_skip * x + s.c_out * out)


def test_perfect_network_output_gives_zero_loss():
    """The ideal F = (x0 - c_skip x) / c_out makes D(x) = x0 exactly."""
    x0, noise, sigma = torch.randn(3, 5), torch.randn(3, 5), torch.tensor([0.1, 1.0, 30.0])[:, None]
    x = x0 + sigma * noise
    s = edm_scalings(sigma)
    ideal = (x0 - s.c_skip * x) / s.c_out
    torch.testing.assert_close(s.c_skip * x + s.c_out * ideal, x0)


def test_noise_level_distribution():
    log_sigma = sample_sigmas(200_000, torch.Generator().manual_seed(0)).log()
    assert abs(log_sigma.mean().item() - 0.7) < 0.02 and abs(log_sigma.std().item() - 1.6) < 0.02
    grid = sigma_grid(4).log()
    expected = 0.7 + 1.6 * math.sqrt(2) * torch.erfinv(torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(grid, expected.float())


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


@pytest.mark.parametrize("temporal_only", [True, False])
def test_only_the_selected_parameters_change(temporal_only):
    parts = tiny_svd()
    chosen = select_trainable(parts.unet, temporal_only)
    before = {name: snapshot(getattr(parts, name)) for name in ("unet", "vae", "image_encoder")}
    opt = torch.optim.AdamW(chosen, lr=1e-3)
    training_loss(parts, batch(), torch.Generator().manual_seed(0), cond_drop=0.0).backward()
    opt.step()
    for part in ("vae", "image_encoder"):
        after = snapshot(getattr(parts, part))
        assert all(torch.equal(before[part][n], after[n]) for n in after), f"{part} moved"
    selected = {id(p) for p in chosen}
    changed = {n for n, p in parts.unet.named_parameters() if not torch.equal(before["unet"][n], p)}
    for name, p in parts.unet.named_parameters():
        assert (name in changed) == (id(p) in selected), name
    if temporal_only:
        assert changed and all(("temporal" in n) or ("time_" in n) for n in changed)
        assert any(".spatial_res_block." in n or ".transformer_blocks." in n for n in set(before["unet"]) - changed)


def fixed_grid_loss(parts, cond: Conditioning) -> float:
    grid = sigma_grid(8)
    repeat = [c.expand(len(grid), *c.shape[1:]) for c in (cond.latents, cond.context, cond.first_latents)]
    grid_cond = Conditioning(*repeat, cond.time_ids.expand(len(grid), -1))
    noise = torch.randn(grid_cond.latents.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return denoising_loss(parts.unet, grid_cond, grid, noise).item()


def test_loss_falls_on_one_clip():
    parts = tiny_svd()
    clip = batch(n=1)
    cond = encode(parts, clip, torch.full((1,), 0.05), sample=False)
    start = fixed_grid_loss(parts, cond)
    opt = torch.optim.AdamW(select_trainable(parts.unet, temporal_only=False), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        opt.zero_grad()
        training_loss(parts, clip, g).backward()
        opt.step()
    assert fixed_grid_loss(parts, cond) < 0.8 * start


def test_save_load_round_trip(tmp_path):
    parts = tiny_svd(seed=3)
    parts.save(tmp_path / "svd")
    loaded = load_svd(tmp_path / "svd")
    cond = encode(parts, batch(), torch.full((2,), 0.05), sample=False)
    cond_loaded = encode(loaded, batch(), torch.full((2,), 0.05), sample=False)
    torch.testing.assert_close(cond_loaded.latents, cond.latents)
    torch.testing.assert_close(cond_loaded.context, cond.context)
    noisy, sigma = torch.randn(cond.latents.shape), torch.tensor([0.5, 5.0])
    with torch.no_grad():
        torch.testing.assert_close(denoise(loaded.unet, noisy, sigma, cond), denoise(parts.unet, noisy, sigma, cond))
    # A fine-tuned UNet saved on its own replaces the directory's.
    with torch.no_grad():
        next(parts.unet.parameters()).add_(1.0)
    parts.unet.save_pretrained(tmp_path / "tuned")
    swapped = load_svd(tmp_path / "svd", unet_dir=tmp_path / "tuned")
    assert torch.equal(next(swapped.unet.parameters()), next(parts.unet.parameters()))
    with pytest.raises(FileNotFoundError, match="not an SVD directory"):
        load_svd(tmp_path / "tuned")


def test_two_step_sampling():
    from PIL import Image

    parts = tiny_svd()
    image = Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))
    clip = generate(parts, image, num_frames=4, size=(32, 32), fps=12, motion_bucket=127, steps=2, seed=5)
    assert clip.shape == (4, 3, 32, 32) and torch.isfinite(clip).all()
    assert clip.min() >= 0 and clip.max() <= 1 and clip.std() > 0
    again = generate(parts, image, num_frames=4, size=(32, 32), fps=12, motion_bucket=127, steps=2, seed=5)
    torch.testing.assert_close(again, clip)
