"""Reference encoder, style tokens, the multi-reference encoder and the inference controls."""

from __future__ import annotations

import pytest
import torch

from toonlab.tts.style import (
    InterpolatedStyle,
    MultiReferenceEncoder,
    RandomTokens,
    ReferenceEncoder,
    ReferenceStyle,
    StyleTokenLayer,
    SubEncoder,
    TokenWeights,
    mean_tokens,
)

N_MELS = 20


def sub(attr: str) -> SubEncoder:
    return SubEncoder(
        attr, ReferenceEncoder(N_MELS, (4, 8, 8), 12), StyleTokenLayer(12, n_tokens=5, n_heads=2, embed_dim=8)
    )


def encoder() -> MultiReferenceEncoder:
    torch.manual_seed(0)
    return MultiReferenceEncoder([sub("speaker"), sub("style")]).eval()


def test_reference_encoder_shapes_and_lengths() -> None:
    enc = ReferenceEncoder(N_MELS, (4, 8, 8), 12)
    mels = torch.randn(3, 40, N_MELS)
    out = enc(mels, torch.tensor([40, 17, 3]))
    assert out.shape == (3, 12)
    full = enc(mels, torch.tensor([40, 40, 40]))
    assert torch.allclose(out[0], full[0]) and not torch.allclose(out[1], full[1])


def test_token_layer_weights_and_embedding() -> None:
    layer = StyleTokenLayer(12, n_tokens=5, n_heads=2, embed_dim=8)
    emb, w = layer(torch.randn(4, 12))
    assert emb.shape == (4, 8) and w.shape == (4, 2, 5)
    assert torch.allclose(w.sum(-1), torch.ones(4, 2))
    assert torch.allclose(layer.embed(w), emb)
    with pytest.raises(ValueError):
        StyleTokenLayer(12, n_tokens=5, n_heads=3, embed_dim=8)


def test_multi_reference_concatenates_sub_encoders() -> None:
    enc = encoder()
    refs = [(torch.randn(2, 30, N_MELS), torch.tensor([30, 20])) for _ in range(2)]
    style, outs = enc(refs)
    assert style.shape == (2, 16) and enc.embed_dim == 16
    assert torch.allclose(style[:, :8], outs[0].style) and torch.allclose(style[:, 8:], outs[1].style)
    with pytest.raises(ValueError):
        enc(refs[:1])
    with pytest.raises(ValueError):
        MultiReferenceEncoder([sub("style"), sub("style")])


def test_inference_controls_set_each_attribute_independently() -> None:
    enc = encoder()
    a, b = torch.randn(30, N_MELS), torch.randn(25, N_MELS)
    speaker, style = enc.subs
    ref_a = ReferenceStyle(a).embed(style)
    ref_b = ReferenceStyle(b).embed(style)
    assert torch.allclose(InterpolatedStyle(a, b, 0.0).embed(style), ref_a, atol=1e-6)
    assert torch.allclose(InterpolatedStyle(a, b, 1.0).embed(style), ref_b, atol=1e-6)
    assert torch.allclose(InterpolatedStyle(a, b, 0.3).embed(style), 0.7 * ref_a + 0.3 * ref_b, atol=1e-6)
    # a one-hot token weight gives that token's value projection, in every head
    one_hot = TokenWeights({2: 1.0}).embed(style)
    values = style.tokens.value(torch.tanh(style.tokens.tokens))[2]
    assert torch.allclose(one_hot[0], values, atol=1e-6)
    with pytest.raises(ValueError):
        TokenWeights({9: 1.0}).embed(style)
    assert torch.equal(RandomTokens(3).embed(style), RandomTokens(3).embed(style))
    assert not torch.equal(RandomTokens(3).embed(style), RandomTokens(4).embed(style))
    # setting only the style leaves the speaker part at its mean tokens
    vec = enc.embed({"style": ReferenceStyle(a)})
    assert vec.shape == (1, 16)
    assert torch.allclose(vec[:, :8], mean_tokens(5).embed(speaker)) and torch.allclose(vec[:, 8:], ref_a)
    with pytest.raises(KeyError):
        enc.embed({"emotion": RandomTokens(0)})
