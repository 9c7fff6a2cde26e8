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


def test_videomamba_in_the_model_factory():
    from toonlab.vision.models import build_classifier, build_videoclip, get_config, with_video_encoder
    from toonlab.vision.videoclip import contrastive_loss

    config = get_config("tiny-mamba")
    assert with_video_encoder(get_config("tiny-mean"), "videomamba:tiny") == config
    with pytest.raises(ValueError, match="unknown video encoder"):
        with_video_encoder(config, "transformer")
    torch.manual_seed(0)
    model = build_videoclip(config)
    frames = torch.randint(0, 256, (3, config.n_frames, 3, config.size, config.size), dtype=torch.uint8)
    mask = torch.ones(3, config.n_frames, dtype=torch.bool)
    h = model.video.prefix(frames.flatten(0, 1)).view(frames.shape)
    video, text, scale = model(h, mask, model.text.prefix(["a", "b", "c"]))
    assert video.shape == text.shape == (3, config.embed_dim)
    contrastive_loss(video, text, torch.arange(3), scale).backward()
    dead = {f"video.backbone.blocks.{videomamba_config('tiny').depth - 1}.mixer.forward_scan.A_log"}
    no_grad = {n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}
    assert no_grad == dead  # see VideoMamba.forward: the cls token is read before any forward-direction decay
    with pytest.raises(ValueError, match="every frame slot"):
        model.video.suffix(h, mask.logical_not())
    logits = build_classifier(config, {"action": 2, "order": 2})(h, mask)
    assert logits["action"].shape == (3, 2) and logits["order"].shape == (3, 2)


@pytest.mark.parametrize("task", ["retrieval", "classify"])
def test_train_and_eval_commands_with_videomamba(labelled, tmp_path, task):
    import json

    from typer.testing import CliRunner

    from toonlab.cli import app

    run = tmp_path / "run"
    args = ["vision", "train", task, "--data", str(labelled), "--out", str(run), "--config", "tiny-mean"]
    args += ["--model", "videomamba:tiny", "--steps", "2", "--batch-size", "4", "--eval-every", "2"]
    result = CliRunner().invoke(app, [*args, "--labels", "kind,action"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["vision", "eval", str(run), "--data", str(labelled)])
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "eval-test.json").read_text())
    assert ("t2v_r1" in summary) if task == "retrieval" else ("order_acc" in summary)
