"""Aesthetic score: the LAION predictor (CLIP image embedding -> small MLP), from local files only.

Model (Schuhmann et al., LAION-Aesthetics; github.com/christophschuhmann/improved-aesthetic-predictor): a CLIP image
embedding, L2-normalised, goes through an MLP trained to regress AVA ratings on a 1-10 scale. Its `MLP` is
`Linear(d, 1024) Dropout Linear(1024, 128) Dropout Linear(128, 64) Dropout Linear(64, 16) Linear(16, 1)` with no
activations (state-dict keys `layers.{0,2,4,6,7}.{weight,bias}`; d = 768 for the ViT-L/14 checkpoint
`sac+logos+ava1-l14-linearMSE.pth`). Any state dict of Linear layers applied in key order loads the same way, so the
single-Linear `sa_0_4_vit_l_14_linear.pth` works too. Files are read with `torch.load(weights_only=True)` or, for
`.safetensors`, `safetensors.torch.load_file`.

- `clip_dir`: a folder `transformers` loads as `CLIPVisionModelWithProjection` + an image-processor config (e.g. the
  vision half of openai/clip-vit-large-patch14 saved with `save_pretrained`); its projection size must equal d.
- `mlp_path`: the MLP state dict.
- `threads`: torch CPU threads in this process (1 by default, as curate runs one worker process per core; None
  leaves torch's default).

Columns: `aesthetic_raw` = the MLP output on the 1-10 scale, averaged over up to `frames` evenly spaced keyframes;
`aesthetic_score` = `clip((raw - 1) / 9, 0, 1)`, Sakuga's 0-1 column. No model configured -> the annotator refuses to
start; not selected -> both columns are null. Nothing here is calibrated to Sakuga's distribution (36% of clips >= 0.8).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from toonlab.curate.stages.annotate.base import ShotView, evenly_spaced
from toonlab.extras import require


def file_sha8(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:8]


def linear_layers(state: dict) -> list[tuple[Any, Any]]:
    """(weight (out, in), bias (out,)) pairs in the order of the numbers in their keys (`layers.7` after `layers.6`)."""

    def order(key: str) -> tuple:
        return tuple(int(n) for n in re.findall(r"\d+", key))

    weights = sorted((k for k in state if k.endswith("weight") and state[k].ndim == 2), key=order)
    if not weights:
        raise ValueError("the MLP file holds no Linear weights")
    layers = [(state[k], state[k[: -len("weight")] + "bias"]) for k in weights]
    for (w0, _), (w1, _) in zip(layers, layers[1:], strict=False):
        if w0.shape[0] != w1.shape[1]:
            raise ValueError(f"MLP layers do not chain: {tuple(w0.shape)} then {tuple(w1.shape)}")
    if layers[-1][0].shape[0] != 1:
        raise ValueError(f"the MLP must end in one output, not {layers[-1][0].shape[0]}")
    return layers


class AestheticAnnotator:
    """LAION aesthetic predictor on a local CLIP vision model and MLP; mean over sampled keyframes."""

    name = "aesthetic"
    columns = (pa.field("aesthetic_score", pa.float64()), pa.field("aesthetic_raw", pa.float64()))

    def __init__(
        self, clip_dir: str | None = None, mlp_path: str | None = None, frames: int = 4, threads: int | None = 1
    ) -> None:
        if not clip_dir or not mlp_path:
            raise ValueError(
                "aesthetic needs local model files: --annotator-option aesthetic.clip_dir=DIR (a CLIP vision model "
                "saved by transformers) --annotator-option aesthetic.mlp_path=FILE (LAION aesthetic MLP state dict)"
            )
        self.clip_dir, self.mlp_path = Path(clip_dir), Path(mlp_path)
        if not (self.clip_dir / "config.json").is_file():
            raise ValueError(f"aesthetic.clip_dir {self.clip_dir} has no config.json (a transformers model folder)")
        if not self.mlp_path.is_file():
            raise ValueError(f"aesthetic.mlp_path {self.mlp_path} is not a file")
        if frames < 1:
            raise ValueError(f"aesthetic.frames must be >= 1, got {frames}")
        self.frames, self.threads = frames, threads
        self._model = self._processor = self._layers = None
        self._model_id: str | None = None

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            config_sha = file_sha8(self.clip_dir / "config.json")
            self._model_id = f"laion-aesthetic-mlp@{file_sha8(self.mlp_path)}+clip:{self.clip_dir.name}@{config_sha}"
        return self._model_id

    def setup(self) -> None:
        torch = require("torch")
        transformers = require("transformers")
        transformers.utils.logging.disable_progress_bar()  # no per-worker "Loading weights" bars in curate output
        if self.threads:  # one per worker process by default: curate parallelises over sources, not inside torch
            torch.set_num_threads(self.threads)
        # the PIL processor: the default one needs torchvision, which this environment must not install
        self._processor = transformers.CLIPImageProcessorPil.from_pretrained(self.clip_dir, local_files_only=True)
        self._model = transformers.CLIPVisionModelWithProjection.from_pretrained(self.clip_dir, local_files_only=True)
        self._model.eval()
        if self.mlp_path.suffix == ".safetensors":
            state = require("safetensors.torch").load_file(str(self.mlp_path))
        else:
            state = torch.load(self.mlp_path, map_location="cpu", weights_only=True)
        self._layers = [(w.float(), b.float()) for w, b in linear_layers(state)]
        width = self._layers[0][0].shape[1]
        projection = self._model.config.projection_dim
        if width != projection:
            raise ValueError(f"the MLP takes {width}-d embeddings but {self.clip_dir} projects to {projection}")

    def raw_scores(self, images: list[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 RGB frames -> (N,) MLP outputs on the 1-10 scale."""
        torch = require("torch")
        if self._model is None:
            self.setup()
        pixels = self._processor(images=images, return_tensors="pt")["pixel_values"]  # (N, 3, S, S)
        with torch.inference_mode():
            embeds = self._model(pixel_values=pixels).image_embeds  # (N, d)
            x = embeds / embeds.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            for weight, bias in self._layers:  # dropout is identity at inference; no activations in LAION's MLP
                x = x @ weight.T + bias
        return x[:, 0].numpy().astype(np.float64)

    def annotate(self, view: ShotView) -> dict[str, Any]:
        raw = float(self.raw_scores(view.images(evenly_spaced(view.n_keyframes, self.frames))).mean())
        return {"aesthetic_score": float(np.clip((raw - 1.0) / 9.0, 0.0, 1.0)), "aesthetic_raw": raw}
