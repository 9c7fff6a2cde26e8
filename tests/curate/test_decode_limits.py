"""Decode-path limits and accuracy: pictures over the pixel limit, memory bounded by bytes of queued frames,
variable frame rates and very low ones, and display rotation. Media is made in each test with PyAV."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from outputs import error_rows, rows_without_shard
from PIL import Image
from synth import ShotSpec, render_frames, write_clip

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.stages.analyze.decode import VideoDecoder, batch_size

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, frames, pts: list[int] | None = None, codec: str = "libx264", rate: int = 24, rotation=None):
    """Encode RGB frames; `pts` in milliseconds gives them explicit (variable) times."""
    import av

    frames = list(frames)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if codec != "ffv1" else "yuv420p"
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_picture_over_the_pixel_limit_is_an_error_row_naming_its_size(tmp_path, two_clips):
    out = tmp_path / "out"
    run_curate([str(two_clips[0].path)], out, CurateConfig(max_frame_pixels=320 * 240 - 1))
    ((source, stage, reason),) = error_rows(out)
    assert stage == "decode" and "320x240" in reason and "--max-frame-pixels" in reason
    assert rows_without_shard(out) == []
    run_curate([str(two_clips[1].path)], out, CurateConfig(max_frame_pixels=320 * 240))  # at the limit: fine
    assert rows_without_shard(out)


def test_default_pixel_limit_refuses_a_huge_ffv1_before_decoding(tmp_path):
    import av

    path = tmp_path / "huge.mkv"
    with av.open(str(path), "w") as out:  # 9000x4500 (40.5 MP), two flat frames: a few KB on disk
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 9000, 4500, "gray"
        for _ in range(2):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((4500, 9000), np.uint8), format="gray")))
        out.mux(stream.encode(None))
    run_curate([str(path)], tmp_path / "out")
    ((_, stage, reason),) = error_rows(tmp_path / "out")
    assert stage == "decode" and "9000x4500 (40.5 MP)" in reason


def test_batches_shrink_with_picture_size():
    assert batch_size(640, 480) == 16
    assert batch_size(8192, 4320) == 1
    assert 1 < batch_size(1920, 1080) <= 16


def _decoded(path: Path, threads: int, keep_frames: bool) -> list:
    with VideoDecoder(path, threads) as decoder:
        return list(decoder.batches(7, keep_frames=keep_frames))


@pytest.mark.parametrize("threads", [0, 1])
def test_released_frames_give_the_same_planes(two_clips, threads):
    """Metadata-only decoding (planes made per frame, each frame released at once) yields the same analysis
    planes and times as decoding that keeps the frames, on FFmpeg's threads and on one."""
    for clip in two_clips:
        kept, released = _decoded(clip.path, threads, True), _decoded(clip.path, threads, False)
        assert [b.start for b in kept] == [b.start for b in released] and len(kept) > 1
        for a, b in zip(kept, released, strict=True):
            assert np.array_equal(a.luma, b.luma) and np.array_equal(a.yuv, b.yuv)
            assert np.array_equal(a.times, b.times)
            assert all(f is not None for f in a.frames) and b.frames == [None] * len(a)


def test_metadata_only_run_finds_the_default_runs_shots_and_keyframes(tmp_path, two_clips):
    paths = [str(c.path) for c in two_clips]
    run_curate(paths, tmp_path / "default")
    run_curate(paths, tmp_path / "none", CurateConfig(image_format="none"))

    def shots(out: Path) -> list[tuple]:
        rows = rows_without_shard(out)
        return sorted((r["source"], r["start_frame"], r["end_frame"], tuple(r["keyframe_indices"])) for r in rows)

    assert shots(tmp_path / "default") == shots(tmp_path / "none") != []


_PEAK = """
import json, sys
from pathlib import Path
from toonlab.curate.run import run_curate
run_curate([sys.argv[1]], Path(sys.argv[2]), workers=1)
status = open("/proc/self/status").read()
print(json.dumps({k: int(status.split(k + ":")[1].split()[0]) for k in ("VmHWM", "VmRSS")}))
"""


def _big_ffv1(path: Path, side: int, drawings: int = 4, hold: int = 10) -> Path:
    """side x side yuv420p ffv1: `drawings` flat pictures with a bar, each held `hold` frames (fast to encode)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for k in range(drawings):
            frame = av.VideoFrame(side, side, "yuv420p")
            for i, plane in enumerate(frame.planes):
                view = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                view[:] = 128 if i else 40 * k + 20
                if i == 0:
                    view[side // 6 + 100 * k : side // 3 + 100 * k, side // 10 : side * 2 // 3] = 235
            for _ in range(hold):
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak RSS from /proc")
def test_peak_memory_is_bounded_by_queued_bytes_not_frames(tmp_path):
    """3000x3000 frames (13.5 MB each as 4:2:0): 16-frame batches (two queued, one analysed, one kept for late
    cuts) peaked at ~700 MiB; bounded by bytes, the run stays near the ~200 MiB import baseline."""
    path = _big_ffv1(tmp_path / "big.mkv", 3000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path), str(tmp_path / "out")], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    peak = json.loads(run.stdout.strip().splitlines()[-1])["VmHWM"] / 1024  # MiB
    assert len(rows_without_shard(tmp_path / "out")) == 1
    assert peak < 500, f"peak RSS {peak:.0f} MiB"


def _shots(seeds, n, hold=1, size=(160, 120)):
    return [frame for seed in seeds for frame in render_frames([ShotSpec(n, hold, seed=seed)], size)]


def test_variable_frame_rate_times_come_from_timestamps(tmp_path):
    """12 frames over 4 s, then 24 frames in 1 s: the cut is at 4.000 s (frame 12 / average fps says 1.667 s),
    and the 12-frame first shot is long enough in time although shorter than --min-scene-len frames."""
    frames = _shots([1], 12) + _shots([2], 24)
    pts = [i * 1000 // 3 for i in range(12)] + [4000 + i * 1000 // 24 for i in range(24)]
    path = _write(tmp_path / "vfr.mkv", frames, pts=pts)
    run_curate([str(path)], tmp_path / "out", CurateConfig(image_format="none"))
    rows = sorted(rows_without_shard(tmp_path / "out"), key=lambda r: r["start_frame"])
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(0, 12), (12, 36)]
    assert [(r["scene_start_time"], r["scene_end_time"]) for r in rows] == [
        ("00:00:00.000", "00:00:04.000"),
        ("00:00:04.000", "00:00:05.000"),  # the last frame (at 4.958 s) lasts one nominal frame
    ]


def test_low_frame_rate_slideshow_keeps_short_shots_and_is_no_flash(tmp_path):
    """At 2 fps, shots of 4, 2 and 4 frames (2 s, 1 s, 2 s): no shot has 18 frames, and the return to the first
    picture 3 frames (1.5 s) later is a cut back, not an impact frame."""
    a, b = _shots([5], 4, hold=4), _shots([6], 2, hold=2)  # one still picture each
    path = _write(tmp_path / "slides.mp4", a + b + a, rate=2)
    run_curate([str(path)], tmp_path / "out", CurateConfig(image_format="none"))
    rows = sorted(rows_without_shard(tmp_path / "out"), key=lambda r: r["start_frame"])
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(0, 4), (4, 6), (6, 10)]
    assert rows[1]["scene_start_time"] == "00:00:02.000"


def test_flash_rule_still_holds_at_24_fps(tmp_path):
    clip = write_clip(tmp_path / "flash.mp4", [ShotSpec(40, 2, flashes=(20, 21), seed=7)])
    run_curate([str(clip.path)], tmp_path / "out", CurateConfig(image_format="none"))
    assert [(r["start_frame"], r["end_frame"]) for r in rows_without_shard(tmp_path / "out")] == [(0, 40)]


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_rotated_video_keyframes_and_size_are_upright(tmp_path, kernels):
    """A phone-style portrait video: coded 160x120 with a display matrix of -90 degrees (shown 120x160)."""
    frames = _shots([8], 6)
    path = _write(tmp_path / "portrait.mp4", frames, rotation=-90)
    out = tmp_path / "out"
    run_curate([str(path)], out, CurateConfig(kernels=kernels))
    (row,) = rows_without_shard(out)
    assert (row["width"], row["height"]) == (120, 160)
    import tarfile

    with tarfile.open(next((out / "shards").glob("*.tar"))) as tar:
        jpg = next(m for m in tar if m.name.endswith(".jpg"))
        image = np.asarray(Image.open(io.BytesIO(tar.extractfile(jpg).read())).convert("RGB"), np.float64)
    upright = np.rot90(frames[0], -1).astype(np.float64)  # -90 degrees counter-clockwise: a clockwise turn
    assert image.shape == upright.shape == (160, 120, 3)
    assert np.abs(image - upright).mean() < 6  # the same picture (x264 + JPEG), not a turned one
    assert np.abs(image - np.rot90(frames[0], 1)).mean() > 20
