"""A long 640x480 H.264 cartoon-like video for throughput benchmarks, made once and cached.

`SEGMENT` frames of synthetic cel animation (shots on ones, twos, threes and mixed, pans, flashes) are rendered
and encoded with libx264 (CRF 20, tune animation), then the encoded packets are repeated with shifted timestamps
(stream copy) up to the frame count asked for: rendering is slow, and the decoder sees a normal long stream
(every repeat starts at an IDR frame).
"""

from __future__ import annotations

from pathlib import Path

from synth import ShotSpec, render_frames

SEGMENT = 2000
SIZE = (640, 480)


def _specs(frames: int) -> list[ShotSpec]:
    holds = [1, 2, 3, (1, 2, 3), 2, 2]
    specs: list[ShotSpec] = []
    total = i = 0
    while total < frames:
        n = min(40 + (i * 37) % 120, frames - total)
        specs.append(ShotSpec(n, holds[i % 6], pan=i % 5 == 0, flashes=(5,) if i % 7 == 3 and n > 8 else (), seed=i))
        total += n
        i += 1
    return specs


def _segment(path: Path, frames: int) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": "20", "preset": "veryfast", "tune": "animation"})
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        for rgb in render_frames(_specs(frames), SIZE):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))


def long_video(folder: Path, frames: int) -> Path:
    """Path of a cached `frames`-frame 640x480 H.264 mp4 in `folder` (made on first use)."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"long_{frames}.mp4"
    if path.exists():
        return path
    segment = folder / f"long_segment_{SEGMENT}.mp4"
    if not segment.exists():
        _segment(segment, SEGMENT)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(segment)) as src, av.open(str(tmp), "w") as out:
        ist = src.streams.video[0]
        ost = out.add_stream_from_template(ist)
        packets = [p for p in src.demux(ist) if p.size]
        span = max(p.pts + p.duration for p in packets) - min(p.pts for p in packets)
        written = 0
        for k in range(-(-frames // len(packets))):
            for p in packets[: frames - written]:
                q = av.Packet(bytes(p))
                q.pts, q.dts, q.duration, q.time_base = p.pts + k * span, p.dts + k * span, p.duration, p.time_base
                q.is_keyframe = p.is_keyframe
                q.stream = ost
                out.mux(q)
            written = min(frames, written + len(packets))
    tmp.rename(path)
    return path
