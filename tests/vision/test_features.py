"""Frozen-prefix caching: the cache equals a fresh computation, and a build stopped part-way resumes."""

from __future__ import annotations

import pytest
import torch

from toonlab.vision import features


def test_prefix_outputs_resume_after_an_interrupted_build(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "PART", 4)
    monkeypatch.setattr(features, "CHUNK", 2)
    state = torch.arange(10.0).view(10, 1)
    calls = []

    def fn(x, fail_at=None):
        calls.append(float(x[0]))
        if fail_at is not None and float(x[0]) >= fail_at:
            raise KeyboardInterrupt
        return x * 2

    key = {"what": "double"}
    with pytest.raises(KeyboardInterrupt):
        features.prefix_outputs(lambda x: fn(x, fail_at=6), state, 10, torch.device("cpu"), tmp_path, key)
    calls.clear()
    out = features.prefix_outputs(fn, state, 10, torch.device("cpu"), tmp_path, key)
    assert torch.equal(out, state * 2)
    assert calls == [4.0, 6.0, 8.0]  # the finished first part (rows 0-3) was not recomputed
    calls.clear()
    again = features.prefix_outputs(fn, state, 10, torch.device("cpu"), tmp_path, key)
    assert torch.equal(again, out) and calls == [] and not list(tmp_path.glob(".features-*"))


def test_tuple_states_are_chunked_and_cached(tmp_path):
    ids, mask = torch.arange(6).view(3, 2), torch.ones(3, 2, dtype=torch.bool)
    out = features.prefix_outputs(lambda s: (s[0] + 1, s[1]), (ids, mask), 3, torch.device("cpu"), tmp_path, {"k": 1})
    assert torch.equal(out[0], ids + 1) and torch.equal(out[1], mask)


def test_a_frozen_cache_is_derived_from_a_lower_cut(tmp_path):
    from toonlab.vision.towers import small_cnn

    torch.manual_seed(0)
    partial_tower = small_cnn("partial").eval()
    frozen_tower = small_cnn("frozen").eval()
    frozen_tower.load_state_dict(partial_tower.state_dict())
    frames = torch.rand(5, 3, 32, 32)
    key, cpu = {"tower": "cnn"}, torch.device("cpu")
    features.tower_outputs(partial_tower, partial_tower.prefix, frames, 5, cpu, tmp_path, key)

    def must_not_run(x):
        raise AssertionError("the frozen features should come from the partial cache")

    derived = features.tower_outputs(frozen_tower, must_not_run, frames, 5, cpu, tmp_path, key)
    assert torch.allclose(derived, frozen_tower.prefix(frames), atol=1e-6)
