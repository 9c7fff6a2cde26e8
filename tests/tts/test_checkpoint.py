"""Checkpoint round trip with weights_only=True."""

from __future__ import annotations

import pytest
import torch

from toonlab.tts.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from toonlab.tts.configs import get_config
from toonlab.tts.model import build_model

CLASSES = {"speaker": ["a", "b"], "style": ["x", "y", "z"]}


def test_round_trip_weights_only(tmp_path) -> None:
    cfg = get_config("micro").with_overrides(train={"steps": 7})
    symbols = ["_", "~", "a", "b", "ˈ"]
    model = build_model(cfg, len(symbols), CLASSES)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sum(p.sum() for p in model.parameters()).backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "run" / "checkpoint.pt", Checkpoint(cfg, symbols, CLASSES, model.state_dict(), opt.state_dict(), 42)
    )
    raw = torch.load(path, weights_only=True)  # no pickled classes anywhere
    assert raw["audio"] == cfg.audio.to_dict() and raw["symbols"] == symbols

    ckpt = load_checkpoint(tmp_path / "run")  # a run folder works too
    assert ckpt.config == cfg and ckpt.symbols == symbols and ckpt.classes == CLASSES and ckpt.step == 42
    assert ckpt.audio == cfg.audio
    again = build_model(ckpt.config, len(ckpt.symbols), ckpt.classes)
    again.load_state_dict(ckpt.model)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    opt2 = torch.optim.Adam(again.parameters(), lr=1e-3)
    opt2.load_state_dict(ckpt.optimizer)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert not list(tmp_path.glob("run/.*tmp*"))  # atomic write left no temp file


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage" * 10, b"PK\x03\x04truncated zip"])
def test_unreadable_checkpoint_is_a_clear_error(tmp_path, content) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable toonlab checkpoint"):
        load_checkpoint(path)
    torch.save([1, 2], path)  # a torch file, but not a checkpoint
    with pytest.raises(ValueError, match="checkpoint format 'list'"):
        load_checkpoint(path)
