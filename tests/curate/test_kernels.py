"""The fast path (compiled kernels, JPEG from YUV planes) against the NumPy/OpenCV reference it replaced."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.stages.analyze import decode, kernels, keyframes, shots
from toonlab.curate.stages.analyze.images import ImageEncoder, YuvJpegEncoder, full_range


def _noisy_run(seed: int, n: int = 9) -> np.ndarray:
    """(n, 64, 64) uint8 frames drifting from one random picture by growing noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (64, 64))
    noise = [rng.integers(-k * 8, k * 8 + 1, (64, 64)) for k in range(n)]
    return np.stack([np.clip(base + e, 0, 255) for e in noise]).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_ssim_matches_scikit_image_and_reference(seed):
    frames = _noisy_run(seed)
    want = [
        structural_similarity(a, b, win_size=7, data_range=255) for a, b in zip(frames[:-1], frames[1:], strict=True)
    ]
    fast = kernels.consecutive_ssim(frames)
    assert fast == pytest.approx(want, abs=1e-12)  # exact integer window sums: float64 rounding only
    assert fast == pytest.approx(keyframes.consecutive_ssim(frames), abs=1e-6)


@pytest.mark.parametrize("shape", [(2, 7, 7), (5, 9, 13), (17, 64, 64)])
def test_compiled_ssim_on_odd_sizes_and_flat_frames(shape):
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, shape).astype(np.uint8)
    frames[1] = 255  # a flat white frame: every window variance 0
    want = [
        structural_similarity(a, b, win_size=7, data_range=255) for a, b in zip(frames[:-1], frames[1:], strict=True)
    ]
    assert kernels.consecutive_ssim(frames) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("full", [[False] * 16, [True] * 16, [True, False] * 8, [False] * 5, [True]])
def test_batch_planes_match_a_plain_transpose_and_lookup(full):
    """The analysis batch's interleaved YUV and full-range luma, against NumPy's transpose and lookup."""
    planar = np.random.default_rng(len(full)).integers(0, 256, (16, 3, 64, 64)).astype(np.uint8)
    batch = decode._batch(0, planar, [None] * len(full), full, np.zeros(len(full)))
    part = planar[: len(full)]
    want_luma = np.where(np.asarray(full)[:, None, None], part[:, 0], decode._LIMITED_TO_FULL[part[:, 0]])
    assert np.array_equal(batch.yuv, part.transpose(0, 2, 3, 1)) and batch.yuv.flags.c_contiguous
    assert np.array_equal(batch.luma, want_luma)
    planar[:] = 0  # the decoder reuses its planar buffer: the batch must not share it
    assert np.array_equal(batch.luma, want_luma)


def test_compiled_shot_features_equal_reference():
    rng = np.random.default_rng(3)
    yuv = rng.integers(0, 256, (7, 64, 64, 3), dtype=np.uint8)
    yuv[3] = yuv[2]  # a held frame: zero deltas
    hsv = shots._hsv(yuv)
    first, first_hist = hsv[0], shots._histograms(hsv[:1])[0]
    fast = shots.fused_features(hsv, first, first_hist)
    ref = shots.reference_features(hsv, first, first_hist)
    for got, want in zip(fast, ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert fast[0][3] == 0 and fast[2][3] == 0


def _frames(path):
    import av

    with av.open(str(path)) as container:
        yield from container.decode(video=0)


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float64)


def _exact_rgb(frame) -> np.ndarray:
    """(H, W, 3) float RGB of a 4:2:0 frame by the BT.601 equations in floating point (nearest chroma)."""
    y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
    u, v = (np.repeat(np.repeat(c.astype(np.float64), 2, 0), 2, 1)[: y.shape[0], : y.shape[1]] for c in (u, v))
    if frame.format.name.startswith("yuvj"):
        luma, cb, cr = y.astype(np.float64), u - 128, v - 128
    else:
        luma, cb, cr = (y - 16.0) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
    rgb = [luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb]
    return np.clip(np.stack(rgb, axis=-1), 0, 255)


@pytest.mark.parametrize("color_range", ["limited", "full"])
def test_yuv_jpeg_matches_reference_pixels(tmp_path, two_clips, color_range):
    """JPEG from the YUV planes decodes to the picture RGB -> OpenCV JPEG gives, within JPEG quality, for
    limited- and full-range sources, and is at least as close to the exact BT.601 conversion."""
    import av

    source = two_clips[0].path
    if color_range == "full":  # re-encode as full-range (yuvj420p) MJPEG
        source = tmp_path / "full.mkv"
        with av.open(str(source), "w") as out:
            stream = out.add_stream("mjpeg", rate=24)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuvj420p"
            for frame in list(_frames(two_clips[0].path))[:3]:
                out.mux(stream.encode(frame.reformat(format="yuvj420p")))
            out.mux(stream.encode(None))
    fast, ref = YuvJpegEncoder(90), ImageEncoder("jpg", 90)
    for i, frame in enumerate(_frames(source)):
        assert fast.planes(frame) is not None  # this frame takes the YUV route
        exact = _exact_rgb(frame)
        a, b = _decoded(fast.encode(i, frame)), _decoded(ref.encode(i, frame))
        assert np.abs(a - b).mean() < 2.0  # the two routes: the same picture within JPEG quality
        assert np.abs(a - exact).mean() <= np.abs(b - exact).mean() + 0.25
        if i == 2:
            break


def test_range_stretch_is_the_rounded_formula_at_every_level():
    """The limited -> full range map equals round((y - 16) * 255 / 219) and round((c - 128) * 255 / 224 + 128),
    clipped, for all 256 levels (so for every picture); also on a strided view, as planes cut to width are."""
    levels = np.arange(256)
    want_luma = np.clip(np.round((levels - 16) * 255 / 219), 0, 255)
    want_chroma = np.clip(np.round((levels - 128) * 255 / 224 + 128), 0, 255)
    wide = np.zeros((16, 20), np.uint8)
    wide[:, :16] = levels.reshape(16, 16)
    for luma, want in ((True, want_luma), (False, want_chroma)):
        assert np.array_equal(full_range(wide[:, :16], luma).ravel(), want)


def test_bt709_frames_take_the_reference_route(two_clips):
    frame = next(_frames(two_clips[0].path))
    frame.colorspace = 1  # AVCOL_SPC_BT709
    assert YuvJpegEncoder(90).planes(frame) is None
    assert YuvJpegEncoder(90).encode(0, frame) == ImageEncoder("jpg", 90).encode(0, frame)


def _run(tmp_path, clips, kernels: str) -> tuple[list[dict], dict[str, bytes]]:
    out = tmp_path / kernels
    run_curate([str(c.path) for c in clips], out, CurateConfig(kernels=kernels))
    rows = sorted(pq.read_table(out / "metadata").to_pylist(), key=lambda r: r["key"])
    images = {}
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            images.update({m.name: tar.extractfile(m).read() for m in tar if m.name.endswith(".jpg")})
    return rows, images


def test_fast_and_reference_paths_agree(tmp_path, two_clips, cut_set):
    """Same shots, same keyframe indices, images equal within JPEG quality on decoded pixels."""
    clips = [*two_clips, *cut_set[:4]]
    fast_rows, fast_images = _run(tmp_path, clips, "fast")
    ref_rows, ref_images = _run(tmp_path, clips, "reference")
    columns = ("key", "start_frame", "end_frame", "keyframe_indices", "scene_start_time", "scene_end_time")
    assert [{c: r[c] for c in columns} for r in fast_rows] == [{c: r[c] for c in columns} for r in ref_rows]
    assert fast_images.keys() == ref_images.keys() and len(fast_images) > 20
    for name, data in fast_images.items():
        assert np.abs(_decoded(data) - _decoded(ref_images[name])).mean() < 2.0, name
