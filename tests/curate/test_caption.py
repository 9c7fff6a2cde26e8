"""Captions: the template from other columns, an OpenAI-compatible server on loopback (request shape, two steps,
errors as error rows), a tiny local transformers model, and the caption as the sample's txt member."""

from __future__ import annotations

import base64
import json
import re
import tarfile
import threading
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow.dataset as ds
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.records import Probe, Shot, SourceResult, VideoRef
from toonlab.curate.run import run_curate
from toonlab.curate.stages.analyze.spool import Spool
from toonlab.curate.stages.annotate.base import ShotView
from toonlab.curate.stages.annotate.caption import CaptionAnnotator

RAW = "In the first frame a girl with red hair stands in a field; she then raises her arm."
FINAL = "A red-haired girl stands in a sunny field and slowly raises her arm toward the sky."


def make_view(tmp_path, n_keyframes: int = 6, annotations: dict | None = None) -> ShotView:
    """A 24-frame shot on fours at 24 fps whose keyframes are solid colours, spooled as JPEG like a real run."""
    cv2 = pytest.importorskip("cv2")
    spool = Spool(tmp_path)
    keyframes = tuple(range(0, 4 * n_keyframes, 4))
    images = {}
    for i, index in enumerate(keyframes):
        frame = np.full((60, 80, 3), (40 * i) % 255, np.uint8)
        images[index] = spool.put(cv2.imencode(".jpg", frame)[1].tobytes(), "jpg")
    spool.close()
    probe = Probe("h264", 80, 60, Fraction(24), 4 * n_keyframes, 1000, "0" * 64)
    result = SourceResult(
        VideoRef("clip.mp4", tmp_path / "clip.mp4"),
        "clip-00000000",
        probe,
        [Shot(0, 4 * n_keyframes, keyframes)],
        spool.path,
        images,
    )
    return ShotView(result, 0, dict(annotations or {}))


def test_template_uses_what_earlier_annotators_filled(tmp_path):
    tags = {"tag_scores": {"1girl": 0.9, "solo": 0.95, "outdoors": 0.8, "red_hair": 0.7, "night": 0.6, "sword": 0.4}}
    annotations = {**tags, "Taxonomy_Venue": "outdoors(label: 0)", "Taxonomy_Venue_label": 0, "motion_score": 1.25}
    row = CaptionAnnotator().annotate(make_view(tmp_path, annotations=annotations))
    text = row["text_description"]
    assert row["caption_source"] == "template@1" and row.get("caption_error") is None
    assert text.startswith("An outdoor scene.")  # taxonomy ran: only its non-Others axes speak
    assert "It shows red hair and sword." in text  # content tags, taxonomy tags left to the scene sentence
    assert "6 unique drawings" in text and "motion score is 1.25" in text
    bare = CaptionAnnotator().annotate(make_view(tmp_path))["text_description"]  # no tagger, no taxonomy
    assert bare == "The 1.0-second shot has 6 unique drawings, with mixed timing."


class _ChatServer:
    """A /v1/chat/completions server on loopback that records requests and replies per `mode`."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode, self.requests = mode, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append((self.path, dict(self.headers), body))
                if owner.mode == "500":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"model crashed")
                    return
                has_images = any(isinstance(m["content"], list) for m in body["messages"])
                text = RAW if has_images else FINAL
                reply = (
                    b"{not json"
                    if owner.mode == "malformed"
                    else json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chat_server():
    servers = []

    def start(mode: str = "ok") -> _ChatServer:
        servers.append(_ChatServer(mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_openai_two_steps_request_shape(tmp_path, chat_server, monkeypatch):
    cv2 = pytest.importorskip("cv2")
    server = chat_server()
    monkeypatch.setenv("TEST_CAPTION_KEY", "sk-test")
    annotator = CaptionAnnotator(
        backend="openai", model="tiny-vlm", base_url=server.url, api_key_env="TEST_CAPTION_KEY"
    )
    row = annotator.annotate(make_view(tmp_path, annotations={"tag_scores": {"red_hair": 0.9, "field": 0.6}}))
    assert row == {
        "caption_source": f"openai:tiny-vlm@{server.url}",
        "text_description": FINAL,
        "caption_raw": RAW,
    }
    (path1, headers1, describe), (_, _, rewrite) = server.requests
    assert path1 == "/v1/chat/completions" and headers1["Authorization"] == "Bearer sk-test"
    assert describe["model"] == "tiny-vlm" and [m["role"] for m in describe["messages"]] == ["system", "user"]
    parts = describe["messages"][1]["content"]
    assert parts[0]["type"] == "text" and "temporal order" in parts[0]["text"]
    images = [p["image_url"]["url"] for p in parts[1:]]
    assert len(images) == 4 and all(p["type"] == "image_url" for p in parts[1:])  # 4 of 6 keyframes
    greys = []
    for url in images:
        assert url.startswith("data:image/jpeg;base64,")
        decoded = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        greys.append(int(decoded.mean()))
    assert greys == pytest.approx([0, 80, 120, 200], abs=3)  # keyframes 0, 2, 3, 5 (evenly spaced), in order
    prompt = rewrite["messages"][1]["content"]
    assert RAW in prompt and "red_hair, field" in prompt and "40 to 60 words" in prompt and "present tense" in prompt


@pytest.mark.parametrize(
    ("mode", "message"), [("500", "HTTP 500 .*model crashed.*after 2 attempts"), ("malformed", "malformed")]
)
def test_openai_errors_become_error_rows(tmp_path, chat_server, mode, message):
    server = chat_server(mode)
    annotator = CaptionAnnotator(backend="openai", model="m", base_url=server.url, retries=1, api_key_env="")
    row = annotator.annotate(make_view(tmp_path))
    assert "text_description" not in row and row["caption_source"] == f"openai:m@{server.url}"
    assert re.search(message, row["caption_error"])


def test_openai_unreachable_and_bad_options(tmp_path):
    annotator = CaptionAnnotator(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", retries=0, timeout=2)
    assert "cannot reach" in annotator.annotate(make_view(tmp_path))["caption_error"]
    with pytest.raises(ValueError, match="model is required"):
        CaptionAnnotator(backend="openai", model="")
    with pytest.raises(ValueError, match="backend must be one of"):
        CaptionAnnotator(backend="gpt")
    with pytest.raises(ValueError, match="unexpected keyword"):
        CaptionAnnotator(backend="template", base_url="x")
    with pytest.raises(ValueError, match="not a transformers model directory"):
        CaptionAnnotator(backend="transformers", model_dir=str(tmp_path))


def _tiny_vision_encoder_decoder(path) -> None:
    """ViT (1 layer) + GPT-2 (1 layer) with a character-level tokenizer built here. The decoder's final norm is
    set to a constant and only the token 'a' has a non-zero embedding, so every step generates 'a': a known
    answer that checks loading, preprocessing, generation and decoding, not caption quality."""
    tf = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz ")}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Split("", "isolated"), decoders.Fuse()
    tokenizer = tf.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    encoder = tf.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=8
    )
    decoder = tf.GPT2Config(vocab_size=len(vocab), n_embd=16, n_layer=1, n_head=2, n_positions=64)
    config = tf.VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 1, 0, 2
    model = tf.VisionEncoderDecoderModel(config=config)
    with torch.no_grad():
        gpt = model.decoder.transformer
        gpt.ln_f.weight.zero_()
        gpt.ln_f.bias.fill_(1.0)
        gpt.wte.weight.zero_()
        gpt.wte.weight[vocab["a"]] = 1.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)


def test_transformers_local_model(tmp_path):
    model_dir = tmp_path / "tiny-vlm"
    _tiny_vision_encoder_decoder(model_dir)
    annotator = CaptionAnnotator(backend="transformers", model_dir=str(model_dir), frames=3, max_new_tokens=5)
    annotator.setup()
    row = annotator.annotate(make_view(tmp_path))
    assert row["text_description"] == "At first, aaaaa; then aaaaa; finally aaaaa."
    assert row["caption_raw"] == "aaaaa | aaaaa | aaaaa"
    assert row["caption_source"].startswith("transformers:tiny-vlm@")


def test_caption_in_parquet_and_txt_member(tmp_path, two_clips):
    config = CurateConfig(annotate=("caption",))
    run_curate([str(two_clips[1].path)], tmp_path, config)
    rows = ds.dataset(tmp_path / "metadata").to_table().to_pylist()
    assert rows and all(r["caption_source"] == "template@1" and r["text_description"] for r in rows)
    assert all(r["Taxonomy_Time"] is None for r in rows)  # taxonomy did not run: its columns stay null
    with tarfile.open(next((tmp_path / "shards").glob("*.tar"))) as tar:
        texts = {m.name.split(".")[0]: tar.extractfile(m).read().decode() for m in tar if m.name.endswith(".txt")}
    assert texts == {r["key"]: r["text_description"] for r in rows}
