"""Caption backends behind one small protocol: a template from the columns, an OpenAI-compatible VLM endpoint, a
local `transformers` image-to-text model. `caption.py` picks one by name and runs it per shot.

A backend gets a few evenly spaced keyframes (RGB uint8 arrays, in frame order) and the shot's `CaptionContext`
(tags, taxonomy, timing; what earlier annotators filled) and returns the caption plus the raw model text it was made
from. A backend failure is a `CaptionError` with a readable reason; the annotator turns it into a `caption_error`
value on that row instead of failing the source.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from toonlab.extras import require


class CaptionError(RuntimeError):
    """The backend could not caption this shot (server error, bad reply, model failure)."""


@dataclass(frozen=True)
class CaptionContext:
    """What is known about a shot besides its pixels; fields are None/empty when their annotator did not run."""

    duration: float  # seconds
    drawings: int  # unique drawings (Sakuga keyframes)
    timing: str  # still / ones / twos / threes / mixed (keyframes.timing_label)
    tags: tuple[str, ...] = ()  # tagger tags, most confident first
    taxonomy: dict[str, str] = field(default_factory=dict)  # axis -> class name, Others left out
    motion_score: float | None = None


@dataclass(frozen=True)
class Caption:
    text: str
    raw: str | None = None  # the model's own description before the rewrite (None for the template)


class CaptionBackend(Protocol):
    needs_images: bool  # False: the backend works from the context alone, so keyframes are not decoded

    @property
    def source(self) -> str:
        """Backend and model, recorded in `caption_source` for every row (e.g. 'openai:<model>@<url>')."""
        ...

    def setup(self) -> None: ...

    def caption(self, images: list[np.ndarray], context: CaptionContext) -> Caption: ...


# ---- (c) template -------------------------------------------------------------------------------------------

_TIME = {"daylight": "daytime", "night": "night-time", "sunset": "sunset"}
_VENUE = {"outdoors": "outdoor", "indoors": "indoor"}
_CHARACTER = {"no_humans": "with no people", "solo": "with one character", "multiple": "with several characters"}
_COMPOSITION = {
    "full_body": "shown full-body",
    "upper_body": "framed from the waist up",
    "lower_body": "framed on the lower body",
    "out_of_frame": "partly out of frame",
}
_FILMING = {"looking_at_viewer": "looking at the viewer", "looking_away": "looking away"}
_MEDIA = {"sketch": " as a rough sketch", "color_trace": " as colour-trace key animation"}
_TIMING = {
    "still": "a single held drawing",
    "ones": "animated on ones",
    "twos": "animated on twos",
    "threes": "animated on threes",
    "mixed": "with mixed timing",
}


def template_caption(context: CaptionContext, max_tags: int = 8, skip_tags: frozenset[str] = frozenset()) -> str:
    """A factual caption from the columns alone: scene (taxonomy), content (tags), timing. Nothing invented."""
    tax = context.taxonomy
    adjectives = " ".join(x for x in (_VENUE.get(tax.get("Venue", "")), _TIME.get(tax.get("Time", ""))) if x)
    scene = (
        f"{'An' if adjectives[:1] in ('a', 'e', 'i', 'o', 'u') else 'A'} {adjectives} scene"
        if adjectives
        else "A scene"
    )
    details = [_CHARACTER.get(tax.get("Character", ""))]
    if tax.get("Character") != "no_humans":
        details += [_COMPOSITION.get(tax.get("Composition", "")), _FILMING.get(tax.get("Filming", ""))]
    details = [d for d in details if d]
    sentences = []
    if adjectives or details:
        sentences.append(f"{scene}{' ' + ', '.join(details) if details else ''}{_MEDIA.get(tax.get('Media', ''), '')}.")
    shown = [t.replace("_", " ") for t in context.tags if t not in skip_tags][:max_tags]
    if shown:
        sentences.append(f"It shows {', '.join(shown[:-1]) + ' and ' + shown[-1] if len(shown) > 1 else shown[0]}.")
    plural = "drawing" if context.drawings == 1 else "drawings"
    sentences.append(
        f"The {context.duration:.1f}-second shot has {context.drawings} unique {plural}, "
        f"{_TIMING.get(context.timing, context.timing)}."
    )
    if context.motion_score is not None:
        sentences.append(f"Its motion score is {context.motion_score:.2f}.")
    return " ".join(sentences)


class TemplateBackend:
    """The default: no model, a caption assembled from the other columns (`caption_source` = 'template@1')."""

    source = "template@1"
    needs_images = False

    def __init__(self, max_tags: int = 8) -> None:
        self.max_tags = int(max_tags)

    def setup(self) -> None:
        pass

    def caption(self, images: list[np.ndarray], context: CaptionContext) -> Caption:
        from toonlab.curate.taxonomy_table import TABLE

        taxonomy_tags = frozenset(tag for cls in TABLE for tag in cls.tags)  # already said by the scene sentence
        return Caption(template_caption(context, self.max_tags, taxonomy_tags))


# ---- (a) OpenAI-compatible chat endpoint --------------------------------------------------------------------

DESCRIBE_PROMPT = (
    "These {n} images are frames from one short animation shot, in temporal order. Describe what happens: the "
    "setting, the characters' appearance and actions, the camera, and what changes from the first frame to the last. "
    "Do not guess the names of characters, people or works."
)
REWRITE_PROMPT = (
    "Rewrite the description of an animation shot below into a single caption of 40 to 60 words. Use the present "
    "tense and tell events in temporal order. Use the tags only where they agree with the description. Do not "
    "invent names of characters, people, studios or works; describe them by appearance. Answer with the caption "
    "only.\n\nDescription: {raw}\n\nTags: {tags}\n\nShot: {facts}"
)


def data_url(image: np.ndarray, max_side: int, quality: int = 90) -> str:
    """(H, W, 3) RGB uint8 -> 'data:image/jpeg;base64,...', scaled down so the longer side fits `max_side`."""
    cv2 = require("cv2")
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise CaptionError("could not JPEG-encode a keyframe")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _reply_text(body: bytes) -> str:
    """The assistant text of a /chat/completions reply; content may be a string or a list of text parts."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise CaptionError(f"malformed chat completion reply ({type(exc).__name__}): {body[:200]!r}") from None
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise CaptionError("chat completion reply has no text")
    return content.strip()


class OpenAIBackend:
    """Sakuga's two steps through an OpenAI-compatible `/chat/completions` endpoint (vLLM, llama.cpp server,
    LM Studio, Ollama): (1) a raw description from `frames` evenly spaced keyframes sent as base64 `image_url`
    parts, (2) a rewrite of that description with the tags into one 40-60-word present-tense caption.

    The API key is read from the environment variable named by `api_key_env` (never from the command line).
    Server errors (5xx, 429), timeouts and refused connections are retried `retries` times with backoff.
    """

    needs_images = True

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        retries: int = 2,
        image_max_side: int = 512,
        max_tokens: int = 300,
        temperature: float = 0.2,
        max_tags: int = 30,
    ) -> None:
        if not model:
            raise ValueError("caption.model is required for the openai backend")
        self.model, self.url = model, base_url.rstrip("/") + "/chat/completions"
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.timeout, self.retries = float(timeout), int(retries)
        self.image_max_side, self.max_tokens, self.temperature = int(image_max_side), int(max_tokens), temperature
        self.max_tags = int(max_tags)

    @property
    def source(self) -> str:
        return f"openai:{self.model}@{self.url.removesuffix('/chat/completions')}"

    def setup(self) -> None:
        pass

    def caption(self, images: list[np.ndarray], context: CaptionContext) -> Caption:
        parts: list[dict[str, Any]] = [{"type": "text", "text": DESCRIBE_PROMPT.format(n=len(images))}]
        parts += [{"type": "image_url", "image_url": {"url": data_url(i, self.image_max_side)}} for i in images]
        raw = self._chat([{"role": "user", "content": parts}])
        facts = f"{context.duration:.1f} seconds, {context.drawings} drawings, {_TIMING.get(context.timing, '')}"
        prompt = REWRITE_PROMPT.format(raw=raw, tags=", ".join(context.tags[: self.max_tags]) or "none", facts=facts)
        text = self._chat([{"role": "user", "content": prompt}])
        return Caption(" ".join(text.split()), raw)

    def _chat(self, messages: list[dict]) -> str:
        payload = {
            "model": self.model,
            "messages": [{"role": "system", "content": "You caption animation clips for a dataset."}, *messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(payload).encode(), headers, method="POST")
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return _reply_text(response.read())
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code} from {self.url}: {exc.read()[:200].decode('utf-8', 'replace')}"
                if exc.code < 500 and exc.code != 429:
                    raise CaptionError(reason) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}"
            if attempt < self.retries:
                time.sleep(0.5 * 2**attempt)
        raise CaptionError(f"{reason} (after {self.retries + 1} attempts)")


# ---- (b) local transformers image-to-text model -------------------------------------------------------------


def _dir_fingerprint(path: Path) -> str:
    """sha256 over config.json and the weight files' names and sizes: cheap, changes when the model does."""
    digest = hashlib.sha256()
    config = path / "config.json"
    digest.update(config.read_bytes() if config.exists() else b"")
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:8]


class TransformersBackend:
    """A local image-to-text model directory (BLIP, GIT, VisionEncoderDecoder: anything `AutoModelForImageTextToText`
    loads with an image processor and a tokenizer), loaded with `local_files_only=True`.

    Each of the `frames` keyframes is captioned on its own; the captions, in frame order, are joined into a
    temporally ordered description ("At first ... Then ... Finally ..."). Chat VLMs that need prompts are served
    through the openai backend instead (vLLM, llama.cpp server and Ollama all load them).
    """

    needs_images = True

    def __init__(self, model_dir: str, max_new_tokens: int = 40, device: str = "cpu") -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").exists():
            raise ValueError(f"caption.model_dir {model_dir!r} is not a transformers model directory (no config.json)")
        self.max_new_tokens, self.device = int(max_new_tokens), device
        self.source = f"transformers:{self.model_dir.name}@{_dir_fingerprint(self.model_dir)}"
        self._model = self._processor = self._tokenizer = None

    def setup(self) -> None:
        transformers = require("transformers")
        auto = getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq
        kwargs = {"local_files_only": True}
        self._processor = transformers.AutoImageProcessor.from_pretrained(self.model_dir, **kwargs)
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir, **kwargs)
        self._model = auto.from_pretrained(self.model_dir, **kwargs).to(self.device).eval()

    def caption(self, images: list[np.ndarray], context: CaptionContext) -> Caption:
        torch = require("torch")
        if self._model is None:
            self.setup()
        pixels = self._processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            tokens = self._model.generate(pixel_values=pixels, max_new_tokens=self.max_new_tokens)
        texts = [" ".join(t.split()) for t in self._tokenizer.batch_decode(tokens, skip_special_tokens=True)]
        texts = [t.rstrip(".") for t in texts if t]
        if not texts:
            raise CaptionError(f"{self.model_dir.name} generated no text")
        raw = " | ".join(texts)
        if len(texts) == 1:
            return Caption(texts[0][:1].upper() + texts[0][1:] + ".", raw)
        steps = ["At first, " + texts[0]] + ["then " + t for t in texts[1:-1]] + ["finally " + texts[-1]]
        return Caption("; ".join(steps) + ".", raw)


BACKENDS: dict[str, type] = {"template": TemplateBackend, "openai": OpenAIBackend, "transformers": TransformersBackend}
