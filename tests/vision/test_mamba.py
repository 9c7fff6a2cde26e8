"""VideoMamba: token count, shapes, both scan directions, causality per direction, bidirectional symmetry, overfit."""

from __future__ import annotations

import copy

import pytest
import torch

from toonlab.vision.mamba import (
    BiMamba,
    VideoMamba,
    VideoMambaClassifier,
    VideoMambaConfig,
    videomamba_config,
)


def clips(config: VideoMambaConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, config.num_frames, config.in_chans, config.img_size, config.img_size, generator=g)


@pytest.mark.parametrize("tubelet", [1, 2])
def test_token_count(tubelet):
    config = videomamba_config("tiny", tubelet=tubelet)
    tokens = VideoMamba(config).tokens(clips(config))
    assert config.num_tokens == 1 + (4 // tubelet) * (32 // 8) ** 2
    assert tokens.shape == (2, config.num_tokens, config.dim)


def test_shapes_and_bad_input():
    config = videomamba_config("tiny")
    torch.manual_seed(0)
    assert VideoMamba(config)(clips(config, batch=3)).shape == (3, config.dim)
    assert VideoMambaClassifier(config, num_classes=5)(clips(config)).shape == (2, 5)
    with pytest.raises(ValueError, match="expects clips"):
        VideoMamba(config)(clips(config).transpose(1, 2))
    with pytest.raises(ValueError, match="multiple"):
        VideoMambaConfig(img_size=30, patch_size=8)
    with pytest.raises(ValueError, match="unknown VideoMamba config"):
        videomamba_config("huge")


def test_reference_sizes():
    """VideoMamba-Ti at 224^2 has ~7 M parameters in the paper."""
    n = sum(p.numel() for p in VideoMamba(videomamba_config("ti")).parameters())
    assert 6.5e6 < n < 7.5e6, n


def test_every_parameter_gets_a_gradient_in_both_directions():
    config = videomamba_config("tiny")
    torch.manual_seed(0)
    model = VideoMamba(config)
    x = clips(config)
    model.sequence(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    backward_params = [n for n, _ in model.named_parameters() if ".backward_scan." in n]
    assert len(backward_params) == 7 * config.depth  # conv w+b, x_proj, dt_proj w+b, A_log, D
    # From the cls readout alone: all but the last block's forward decay, which acts on a zero state there.
    model.zero_grad()
    model(x).square().mean().backward()
    dead = f"blocks.{config.depth - 1}.mixer.forward_scan.A_log"
    for name, p in model.named_parameters():
        assert (p.grad.abs().sum() > 0) == (name != dead), name


def mixer(seed: int = 0) -> BiMamba:
    torch.manual_seed(seed)
    return BiMamba(dim=8, d_state=4, d_conv=4, expand=2, dt_rank=2, scan_backend="auto").double()


def test_each_direction_is_causal_its_own_way():
    m, t0 = mixer(), 6
    h = torch.randn(2, 13, 8, dtype=torch.float64)
    moved = h.clone()
    moved[:, t0] += 1.0
    with torch.no_grad():
        (f0, b0), (f1, b1) = m.directions(h), m.directions(moved)
    assert torch.equal(f0[..., :t0], f1[..., :t0])  # forward: nothing before t0 moves
    assert (f0[..., t0:] - f1[..., t0:]).abs().amax() > 1e-4
    assert torch.equal(b0[..., t0 + 1 :], b1[..., t0 + 1 :])  # backward: nothing after t0 moves
    assert (b0[..., : t0 + 1] - b1[..., : t0 + 1]).abs().amax() > 1e-4


def test_flipping_the_input_and_swapping_directions_flips_the_output():
    m = mixer()
    swapped = copy.deepcopy(m)
    swapped.forward_scan, swapped.backward_scan = swapped.backward_scan, swapped.forward_scan
    h = torch.randn(2, 11, 8, dtype=torch.float64)
    with torch.no_grad():
        out, out_swapped = m(h), swapped(h.flip(1))
        torch.testing.assert_close(out_swapped, out.flip(1))
        assert (m(h.flip(1)) - out.flip(1)).abs().amax() > 1e-3  # not symmetric without the swap


def test_backends_agree_inside_the_model():
    config = videomamba_config("tiny", scan_backend="loop")
    torch.manual_seed(0)
    loop = VideoMamba(config)
    parallel = VideoMamba(videomamba_config("tiny", scan_backend="parallel"))
    parallel.load_state_dict(loop.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(loop(clips(config)), parallel(clips(config)), rtol=1e-4, atol=1e-5)


def test_bf16_autocast_and_grad_checkpoint_run_on_cpu():
    config = videomamba_config("tiny", grad_checkpoint=True)
    torch.manual_seed(0)
    model = VideoMamba(config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(clips(config))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert model.blocks[0].mixer.backward_scan.A_log.grad is not None


def test_tiny_model_overfits_eight_clips():
    config = videomamba_config("tiny")
    torch.manual_seed(0)
    model = VideoMambaClassifier(config, num_classes=4)
    x, y = clips(config, batch=8, seed=1), torch.arange(8) % 4
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert (model(x).argmax(-1) == y).all()
    assert loss.item() < 0.1
