"""Stable Video Diffusion (Blattmann et al. 2023) image-to-video fine-tuning: parts, EDM preconditioning, the loss.

The parts are diffusers' ``UNetSpatioTemporalConditionModel`` and ``AutoencoderKLTemporalDecoder``, transformers'
``CLIPVisionModelWithProjection`` and diffusers' ``EulerDiscreteScheduler``, read from a local SVD directory (the
``stable-video-diffusion-img2vid`` layout: unet/, vae/, image_encoder/, scheduler/, feature_extractor/) with
``local_files_only``. Conditioning follows the diffusers pipeline: the CLIP embedding of the clean first frame as
cross-attention context; the VAE latent mode of the noise-augmented first frame, repeated over time and
concatenated to the noisy latents on channels; added time ids (fps - 1, motion bucket, noise-augmentation sigma).

EDM with sigma_data = 1 (Karras et al. 2022), v-prediction as SVD: ln sigma ~ N(0.7, 1.6^2); the network sees
c_in x with noise level c_noise = ln(sigma) / 4, and D(x) = c_skip x + c_out F(c_in x); loss weight 1 / c_out^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from toonlab.extras import require

P_MEAN, P_STD = 0.7, 1.6  # training distribution of ln sigma
COND_MEAN, COND_STD = -3.0, 0.5  # ln sigma of the noise added to the conditioning frame
SUBFOLDERS = ("unet", "vae", "image_encoder", "scheduler", "feature_extractor")
# Parameter-name parts of UNetSpatioTemporalConditionModel's temporal layers (attention over time, temporal
# resnets, the learned spatial/temporal mixing factors, the frame-index embedding).
TEMPORAL_PARTS = ("temporal_transformer_blocks", "temporal_res_block", "time_mixer", "time_pos_embed")


@dataclass(frozen=True)
class EDMScalings:
    """EDM preconditioning at noise level sigma (tensors broadcast like sigma)."""

    c_skip: torch.Tensor
    c_out: torch.Tensor
    c_in: torch.Tensor
    c_noise: torch.Tensor
    weight: torch.Tensor  # loss weight (1 + sigma^2) / sigma^2 = 1 / c_out^2


def edm_scalings(sigma: torch.Tensor) -> EDMScalings:
    """The v-prediction EDM scalings of SVD's Euler scheduler, for sigma > 0."""
    var = sigma.square() + 1
    return EDMScalings(
        c_skip=1 / var,
        c_out=-sigma / var.sqrt(),
        c_in=1 / var.sqrt(),
        c_noise=sigma.log() / 4,
        weight=var / sigma.square(),
    )


def sample_sigmas(n: int, generator: torch.Generator | None = None, mean: float = P_MEAN, std: float = P_STD):
    """n noise levels with ln sigma ~ N(mean, std^2): (n,)."""
    return torch.exp(mean + std * torch.randn(n, generator=generator))


def sigma_grid(k: int = 8) -> torch.Tensor:
    """k fixed noise levels at the mid-quantiles of the training distribution (for a reproducible held-out loss)."""
    q = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    return torch.exp(P_MEAN + P_STD * math.sqrt(2) * torch.erfinv(2 * q - 1)).float()


@dataclass
class SVDParts:
    """The modules of an SVD checkpoint. ``feature_extractor`` supplies the CLIP normalisation."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    image_encoder: torch.nn.Module
    scheduler: object
    feature_extractor: object

    def to(self, device: torch.device | str) -> SVDParts:
        for module in (self.unet, self.vae, self.image_encoder):
            module.to(device)
        return self

    def pipeline(self):
        """diffusers' ``StableVideoDiffusionPipeline`` over these parts (sampling, saving)."""
        diffusers = require("diffusers")
        return diffusers.StableVideoDiffusionPipeline(
            vae=self.vae,
            image_encoder=self.image_encoder,
            unet=self.unet,
            scheduler=self.scheduler,
            feature_extractor=self.feature_extractor,
        )

    def save(self, directory: Path | str) -> None:
        """Write the SVD directory layout (``save_pretrained`` of every part, safetensors)."""
        self.pipeline().save_pretrained(str(directory), safe_serialization=True)


def check_svd_dir(directory: Path | str) -> Path:
    """``directory`` if it has every part's folder, else a FileNotFoundError naming the missing ones."""
    directory = Path(directory)
    missing = [name for name in SUBFOLDERS if not (directory / name).is_dir()]
    if missing:
        raise FileNotFoundError(f"{directory} is not an SVD directory: missing {', '.join(missing)}/")
    return directory


def load_svd(directory: Path | str, unet_dir: Path | str | None = None) -> SVDParts:
    """Read an SVD directory offline; ``unet_dir`` (a saved UNet) replaces its UNet, e.g. a fine-tuned one."""
    diffusers, transformers = require("diffusers"), require("transformers")
    directory = check_svd_dir(directory)
    local = {"local_files_only": True}
    return SVDParts(
        unet=load_unet(unet_dir if unet_dir is not None else directory / "unet"),
        vae=diffusers.AutoencoderKLTemporalDecoder.from_pretrained(str(directory / "vae"), **local),
        image_encoder=transformers.CLIPVisionModelWithProjection.from_pretrained(
            str(directory / "image_encoder"), **local
        ),
        scheduler=diffusers.EulerDiscreteScheduler.from_pretrained(str(directory / "scheduler"), **local),
        feature_extractor=_image_processor(transformers).from_pretrained(str(directory / "feature_extractor"), **local),
    )


def load_unet(directory: Path | str) -> torch.nn.Module:
    """A saved ``UNetSpatioTemporalConditionModel`` (an SVD directory's unet/, or a fine-tuned checkpoint's)."""
    diffusers = require("diffusers")
    return diffusers.UNetSpatioTemporalConditionModel.from_pretrained(str(directory), local_files_only=True)


def _image_processor(transformers):
    """The PIL CLIP image processor (the default one needs torchvision)."""
    return getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)


def svd_scheduler():
    """The Euler scheduler configured as SVD's (v-prediction, continuous timesteps, Karras sigmas 0.002..700)."""
    diffusers = require("diffusers")
    return diffusers.EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        interpolation_type="linear",
        use_karras_sigmas=True,
        sigma_min=0.002,
        sigma_max=700.0,
        timestep_spacing="leading",
        timestep_type="continuous",
        steps_offset=1,
    )


def tiny_svd(num_frames: int = 4, seed: int = 0) -> SVDParts:
    """A randomly initialised SVD of ~2.3 M parameters with the real architecture (tests, benchmarks, smoke runs)."""
    diffusers, transformers = require("diffusers"), require("transformers")
    torch.manual_seed(seed)
    unet = diffusers.UNetSpatioTemporalConditionModel(
        sample_size=16,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
        layers_per_block=1,
        cross_attention_dim=32,
        num_attention_heads=(2, 4),
        num_frames=num_frames,
    )
    vae = diffusers.AutoencoderKLTemporalDecoder(
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        sample_size=32,
    )
    # The pipeline resizes the conditioning frame to 224^2 for CLIP; patch 56 keeps the tiny encoder cheap.
    clip_config = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=224,
        patch_size=56, projection_dim=32,
    )  # fmt: skip
    image_encoder = transformers.CLIPVisionModelWithProjection(clip_config)
    processor = _image_processor(transformers)(crop_size={"height": 224, "width": 224}, size={"shortest_edge": 224})
    return SVDParts(unet, vae, image_encoder.eval(), svd_scheduler(), processor)


def select_trainable(unet: torch.nn.Module, temporal_only: bool) -> list[torch.nn.Parameter]:
    """Freeze the UNet but for the chosen parameters (all, or its temporal layers) and return those."""
    chosen = []
    for name, p in unet.named_parameters():
        p.requires_grad_(not temporal_only or any(part in name for part in TEMPORAL_PARTS))
        if p.requires_grad:
            chosen.append(p)
    if not chosen:
        raise ValueError("no temporal parameters found in this UNet")
    return chosen


@dataclass
class SVDBatch:
    """One batch of training clips: frames (B, F, 3, H, W) in [-1, 1]; fps and motion bucket ids (B,)."""

    frames: torch.Tensor
    fps: torch.Tensor
    motion_bucket: torch.Tensor


def clip_embedding(parts: SVDParts, first: torch.Tensor) -> torch.Tensor:
    """CLIP image embedding of frames (B, 3, H, W) in [-1, 1] as cross-attention context (B, 1, D).

    As the pipeline: antialiased resize to the encoder's input size, then the processor's mean and std.
    """
    size = parts.image_encoder.config.image_size
    x = F.interpolate(first.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=True)
    x = ((x + 1) / 2).clamp(0, 1)
    mean = torch.tensor(parts.feature_extractor.image_mean, device=x.device)[None, :, None, None]
    std = torch.tensor(parts.feature_extractor.image_std, device=x.device)[None, :, None, None]
    dtype = next(parts.image_encoder.parameters()).dtype
    return parts.image_encoder(((x - mean) / std).to(dtype)).image_embeds.unsqueeze(1)


@dataclass
class Conditioning:
    """Everything but the noise: clean latents (B, F, 4, h, w), context, first-frame latents, added time ids."""

    latents: torch.Tensor
    context: torch.Tensor  # (B, 1, D)
    first_latents: torch.Tensor  # (B, F, 4, h, w)
    time_ids: torch.Tensor  # (B, 3)


@torch.no_grad()
def encode(parts: SVDParts, batch: SVDBatch, cond_sigma: torch.Tensor, generator=None, sample=True) -> Conditioning:
    """Run the frozen VAE and CLIP encoder; ``sample`` False takes the latent mode (deterministic evaluation)."""
    frames = batch.frames
    b, f = frames.shape[:2]
    cond_sigma = cond_sigma.to(frames.device)
    dtype = next(parts.vae.parameters()).dtype
    dist = parts.vae.encode(frames.flatten(0, 1).to(dtype)).latent_dist
    latents = (dist.sample(generator) if sample else dist.mode()) * parts.vae.config.scaling_factor
    first = frames[:, 0]
    noise = torch.randn(first.shape, generator=generator).to(first)
    noisy_first = first + cond_sigma.to(first)[:, None, None, None] * noise
    first_latents = parts.vae.encode(noisy_first.to(dtype)).latent_dist.mode()  # unscaled, as the pipeline
    time_ids = torch.stack([batch.fps.float() - 1, batch.motion_bucket.float(), cond_sigma.float()], dim=1)
    return Conditioning(
        latents=latents.unflatten(0, (b, f)),
        context=clip_embedding(parts, first),
        first_latents=first_latents.unsqueeze(1).expand(-1, f, -1, -1, -1),
        time_ids=time_ids.to(frames.device),
    )


def denoise(unet, noisy: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise): the model's estimate of the clean latents."""
    s = edm_scalings(sigma.to(noisy))
    expand = (slice(None), None, None, None, None)
    model_input = torch.cat([s.c_in[expand] * noisy, cond.first_latents.to(noisy)], dim=2)
    dtype = next(unet.parameters()).dtype
    out = unet(
        model_input.to(dtype),
        s.c_noise.to(dtype),
        encoder_hidden_states=cond.context.to(dtype),
        added_time_ids=cond.time_ids.to(dtype),
    ).sample
    return s.c_skip[expand] * noisy + s.c_out[expand] * out.float()


def denoising_loss(
    unet, cond: Conditioning, sigma: torch.Tensor, noise: torch.Tensor, reduce: bool = True
) -> torch.Tensor:
    """EDM-weighted squared error of D(latents + sigma noise) against the latents; per clip if not ``reduce``."""
    latents = cond.latents.float()
    noisy = latents + sigma.to(latents)[:, None, None, None, None] * noise.to(latents)
    error = (denoise(unet, noisy, sigma, cond) - latents).square().flatten(1).mean(1)  # (B,)
    per_clip = edm_scalings(sigma.to(latents)).weight * error
    return per_clip.mean() if reduce else per_clip


def drop_conditioning(cond: Conditioning, p: float, generator=None) -> Conditioning:
    """Zero the CLIP context and, independently, the first-frame latents of each clip with probability p.

    Classifier-free guidance at sampling time runs the model with both zeroed, so it must see that in training.
    """
    if p <= 0:
        return cond
    b = cond.context.shape[0]
    keep_context = (torch.rand(b, generator=generator) >= p).to(cond.context)
    keep_first = (torch.rand(b, generator=generator) >= p).to(cond.first_latents)
    return Conditioning(
        latents=cond.latents,
        context=cond.context * keep_context[:, None, None],
        first_latents=cond.first_latents * keep_first[:, None, None, None, None],
        time_ids=cond.time_ids,
    )


def training_loss(parts: SVDParts, batch: SVDBatch, generator=None, cond_drop: float = 0.1) -> torch.Tensor:
    """One SVD training objective on a batch: random sigma, noise, conditioning noise and dropout."""
    b = batch.frames.shape[0]
    cond_sigma = sample_sigmas(b, generator, COND_MEAN, COND_STD)
    cond = drop_conditioning(encode(parts, batch, cond_sigma, generator), cond_drop, generator)
    sigma = sample_sigmas(b, generator).to(batch.frames.device)
    noise = torch.randn(cond.latents.shape, generator=generator).to(batch.frames.device)
    return denoising_loss(parts.unet, cond, sigma, noise)


@torch.no_grad()
def generate(
    parts: SVDParts,
    image,
    num_frames: int,
    size: tuple[int, int],
    fps: float,
    motion_bucket: int,
    steps: int = 25,
    noise_aug: float = 0.02,
    seed: int = 0,
) -> torch.Tensor:
    """A clip from a first frame (PIL image) with diffusers' pipeline: (F, 3, H, W) float in [0, 1]."""
    height, width = size
    out = parts.pipeline()(
        image,
        height=height,
        width=width,
        num_frames=num_frames,
        num_inference_steps=steps,
        fps=round(fps),
        motion_bucket_id=int(motion_bucket),
        noise_aug_strength=noise_aug,
        decode_chunk_size=num_frames,
        generator=torch.Generator().manual_seed(seed),
        output_type="pt",
    )
    return out.frames[0]
