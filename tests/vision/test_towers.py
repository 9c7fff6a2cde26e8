"""Tower splitting and the local CLIP-directory towers (a tiny CLIP written in the test)."""

from __future__ import annotations

import json

import pytest
import torch

from toonlab.vision.towers import build_frame_tower, build_text_tower, byte_tokenize, small_cnn, tiny_text


@pytest.mark.parametrize("mode", ["frozen", "partial", "full"])
def test_split_towers_compute_the_same_function_in_every_mode(mode):
    torch.manual_seed(0)
    reference = small_cnn("full").eval()
    tower = small_cnn(mode).eval()
    tower.load_state_dict(reference.state_dict())
    x = torch.rand(3, 3, 32, 32)
    assert torch.allclose(tower.suffix(tower.prefix(x)), reference(x), atol=1e-6)
    trainable = any(p.requires_grad for p in tower.parameters())
    assert trainable == (mode != "frozen") and tower.cached == (mode != "full")


def test_frozen_stages_stay_in_eval_mode_while_training():
    tower = small_cnn("partial").train()
    assert all(not s.training for s in tower.stages[: tower.cut]) and tower.stages[-1].training


def test_byte_tokens_and_tiny_text_padding_invariance():
    ids, mask = byte_tokenize(["ab", "abcd"])
    assert ids.tolist() == [[98, 99, 0, 0], [98, 99, 100, 101]] and mask.sum(1).tolist() == [2, 4]
    torch.manual_seed(0)
    tower = tiny_text("full").eval()
    alone, padded = tower(["ab"]), tower(["ab", "a much longer caption"])[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_unknown_tower_names_are_errors():
    with pytest.raises(ValueError, match="unknown frame tower"):
        build_frame_tower("resnet", "frozen")
    with pytest.raises(ValueError, match="unknown text tower"):
        build_text_tower("gpt", "frozen")
    with pytest.raises(FileNotFoundError, match="not a transformers CLIP directory"):
        build_frame_tower("clip:/nonexistent", "frozen")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    text = dict(
        small, vocab_size=len(vocab), max_position_embeddings=32, bos_token_id=0, eos_token_id=1, pad_token_id=1
    )
    config = transformers.CLIPConfig(
        text_config=text, vision_config=dict(small, image_size=32, patch_size=8), projection_dim=16
    )
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(folder)
    processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder, model


def _features(out):
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def test_clip_directory_towers_match_the_clip_model(clip_dir):
    folder, model = clip_dir
    vision, text = (
        build_frame_tower(f"clip:{folder}", "frozen").eval(),
        build_text_tower(f"clip:{folder}", "full").eval(),
    )
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = _features(model.get_image_features(pixel_values=(x - mean) / std))
        ids, mask = text.tokenize(["a cat", "dog"])
        expected_text = _features(model.get_text_features(input_ids=ids, attention_mask=mask.long()))
        assert torch.allclose(vision(x), expected, atol=1e-5)
        assert torch.allclose(text(["a cat", "dog"]), expected_text, atol=1e-5)
    assert vision.dim == text.dim == 16 and not any(p.requires_grad for p in vision.parameters())
