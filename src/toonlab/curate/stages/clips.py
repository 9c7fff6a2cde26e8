"""Optional clip files per shot (`--clips copy|encode`), made only when asked for.

copy: the shot's packets are stream-copied into an MP4 (no re-encode; the clip starts at the last codec
keyframe at or before the shot start, so it may begin a little early). encode: the shot's frames exactly,
re-encoded with H.264 (or MPEG-4 Part 2 when the FFmpeg build lacks libx264).
"""

from __future__ import annotations

import io
from fractions import Fraction

from toonlab.curate.records import SourceResult
from toonlab.curate.stage import Resources, StageError
from toonlab.curate.stages.analyze.spool import Spool
from toonlab.extras import require


class ClipStage:
    name = "clips"
    resources = Resources(cpus=1.0)

    def __init__(self, mode: str) -> None:
        if mode not in ("copy", "encode"):
            raise ValueError(f"clip mode must be 'copy' or 'encode', got {mode!r}")
        self.mode = mode

    def setup(self) -> None:
        require("av")

    def process(self, result: SourceResult) -> SourceResult:
        cut = self._copy if self.mode == "copy" else self._encode
        spool = Spool(path=result.spool)
        try:
            for position, shot in enumerate(result.shots):
                result.clips[position] = spool.put(cut(result, shot.start, shot.end), "mp4")
        except Exception as exc:
            raise StageError("clips", f"could not write {self.mode} clip: {exc}") from exc
        finally:
            spool.close()
        return result

    def _copy(self, result: SourceResult, start: int, end: int) -> bytes:
        av = require("av")
        buf = io.BytesIO()
        with av.open(str(result.ref.path)) as src, av.open(buf, "w", format="mp4") as dst:
            ist = src.streams.video[0]
            ost = dst.add_stream_from_template(ist)
            fps = result.probe.fps
            t0, t1 = Fraction(start) / fps, Fraction(end) / fps
            src.seek(int(t0 / ist.time_base), stream=ist, backward=True, any_frame=False)
            first_pts = None
            for packet in src.demux(ist):
                if packet.pts is None or packet.dts is None:
                    continue
                if packet.pts * ist.time_base >= t1:
                    break
                first_pts = packet.pts if first_pts is None else first_pts
                packet.pts -= first_pts
                packet.dts -= first_pts
                packet.stream = ost
                dst.mux(packet)
        return buf.getvalue()

    def _encode(self, result: SourceResult, start: int, end: int) -> bytes:
        av = require("av")
        buf = io.BytesIO()
        probe = result.probe
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        with av.open(str(result.ref.path)) as src, av.open(buf, "w", format="mp4") as dst:
            ost = dst.add_stream(codec, rate=probe.fps)
            ost.width, ost.height = probe.width - probe.width % 2, probe.height - probe.height % 2
            ost.pix_fmt = "yuv420p"
            for index, frame in enumerate(src.decode(video=0)):
                if index >= end:
                    break
                if index >= start:
                    out = frame.reformat(width=ost.width, height=ost.height, format="yuv420p")
                    out.pts = index - start
                    out.time_base = Fraction(1) / probe.fps
                    dst.mux(ost.encode(out))
            dst.mux(ost.encode(None))
        return buf.getvalue()
