"""Curate throughput, shot F1 and memory, side by side in one run.

    python benchmarks/curate_bench.py [--quick] [--media .cache/media/clips] [--with-synth] [--long 20000]

Methods, all on the same files:
- decode ceiling: PyAV decodes every frame (thread_type AUTO), no conversion;
- PySceneDetect: AdaptiveDetector with the Sakuga-42M settings, its own PyAV decode loop (backend "pyav");
- Sakuga reference: that split, then the released detect_keyframes.py loop (OpenCV frames, 64x64
  resize of previous and current frame, YUV, Y, skimage SSIM < 0.95) over every detected scene,
  reading the source directly (no clip re-encode, no keyframe-video writing);
- toonlab curate: `run_curate` into a temporary folder: default settings (shots, unique drawings, JPEG
  keyframes) and metadata-only (`--image-format none`), each on the fast path and on the reference path it
  replaced (`kernels="reference"`: NumPy/OpenCV analysis, RGB -> OpenCV JPEG), 1 worker; the default with
  2 workers on the local executor and on Ray.
With `--long N` the 1-worker methods also run on a generated N-frame 640x480 H.264 file (`long_video.py`).
The fast and reference paths must agree: same shots and keyframe indices (checked and printed).

Then shot F1 on the synthetic cut set (PySceneDetect Adaptive vs toonlab, cuts within +-1 frame)
and peak memory of toonlab on a synthetic clip of N and 4N frames (a fresh process each).
Timings are the best of `--repeats` rounds (every method once per round); they never gate anything.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests" / "curate"), str(ROOT / "src")]  # synth: the test clips

from curate_memory import memory_vs_length  # noqa: E402
from long_video import long_video  # noqa: E402
from shot_eval import SAKUGA_ADAPTIVE, evaluate, pyscenedetect_cuts  # noqa: E402
from synth import SynthClip, standard_cut_set  # noqa: E402

console = Console(width=150)


# ----------------------------------------------------------------------------------------------
# Methods: each takes the file list and returns counts {"frames", and "shots"/"keyframes" if it finds them}


def decode_only(files: Sequence[Path]) -> dict:
    import av

    n = 0
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in container.decode(stream):
                n += 1
    return {"frames": n}


def decode_and_encode(files: Sequence[Path], decoder_threads: int = 0) -> dict:
    """The limit of the default output: decode every frame and JPEG-encode the frames toonlab's default run kept
    (its last run's keyframe indices, shot starts included), with toonlab's own encoder on as many threads, and
    nothing else (no analysis, no writing). Needs that run first. `decoder_threads`: 0 lets FFmpeg choose. The
    encoder threads run as toonlab's do, `ENCODE_NICENESS` nicer than the decoding thread."""
    import av

    from toonlab.curate.stages.analyze import ENCODE_NICENESS
    from toonlab.curate.stages.analyze.images import make_image_encoder
    from toonlab.io import lower_this_thread

    kept: dict[str, set[int]] = {}
    for name, start, _end, keys in SHOTS.get(DEFAULT, []):
        kept.setdefault(name, set()).update({start, *keys})
    encoder = make_image_encoder("jpg", 90, None)
    n = encoded = 0
    with ThreadPoolExecutor(2, initializer=lower_this_thread, initargs=(ENCODE_NICENESS,)) as pool:
        for path in files:
            wanted, pending = kept.get(path.name, set()), deque()
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if decoder_threads:
                    stream.codec_context.thread_count = decoder_threads
                for index, frame in enumerate(container.decode(stream)):
                    if index in wanted:
                        pending.append(pool.submit(encoder.encode, index, frame))
                        while len(pending) > 8:  # as toonlab's encode queue: at most 8 frames wait
                            encoded += len(pending.popleft().result()) > 0
                    n += 1
            encoded += sum(len(f.result()) > 0 for f in pending)
    return {"frames": n, "keyframes": encoded}


def _scenes(path: Path) -> tuple[list[int], int]:
    """Scene start frames (first one 0) and frames read, by PySceneDetect with the Sakuga settings."""
    from scenedetect import AdaptiveDetector, SceneManager, open_video

    video = open_video(str(path), backend="pyav")
    manager = SceneManager()
    manager.add_detector(AdaptiveDetector(**SAKUGA_ADAPTIVE))
    manager.detect_scenes(video)
    starts = [start.frame_num for start, _ in manager.get_scene_list()]
    return (starts or [0]), video.frame_number


def pyscenedetect(files: Sequence[Path]) -> dict:
    found = [_scenes(path) for path in files]
    return {"frames": sum(n for _, n in found), "shots": sum(len(s) for s, _ in found)}


def sakuga_reference(files: Sequence[Path]) -> dict:
    import cv2
    from skimage.metrics import structural_similarity

    def pre_process(frame):  # as released: default (bilinear) resize, then Y of YUV
        return cv2.cvtColor(cv2.resize(frame, (64, 64)), cv2.COLOR_BGR2YUV)[:, :, 0]

    def ssim(frame1, frame2):
        return structural_similarity(pre_process(frame1), pre_process(frame2))

    n = shots = kept = 0
    for path in files:
        starts = set(_scenes(path)[0])
        shots += len(starts)
        reader = cv2.VideoCapture(str(path))
        prev, index, changed = None, 0, set()
        while True:
            ok, frame = reader.read()
            if not ok:
                break
            if index > 0 and ssim(prev, frame) < 0.95:
                changed.add(index)
            kept += index in starts or index in changed  # a scene's first frame is always kept
            prev, index = frame, index + 1
        reader.release()
        n += index
        _CHANGED["reference"][path.name] = changed
    return {"frames": n, "shots": shots, "keyframes": kept}


# Frames whose SSIM to the previous frame fell below 0.95, per file name and method (shot starts aside),
# filled by the last timed run of the Sakuga reference and of toonlab with 1 worker.
_CHANGED: dict[str, dict[str, set[int]]] = {"reference": {}, "toonlab": {}, "toonlab_starts": {}}


def real_keyframe_agreement() -> dict | None:
    """toonlab's kept frames vs the released rule's on the real files, frames at toonlab's shot starts
    left out (both keep those); None unless both methods ran."""
    if not _CHANGED["toonlab"] or not _CHANGED["reference"]:
        return None
    out = {"reference": 0, "toonlab": 0, "both": 0, "only_reference": {}, "only_toonlab": {}}
    for name, ref in _CHANGED["reference"].items():
        ref = ref - _CHANGED["toonlab_starts"].get(name, set())
        ours = _CHANGED["toonlab"].get(name, set())
        out["reference"] += len(ref)
        out["toonlab"] += len(ours)
        out["both"] += len(ref & ours)
        if ref - ours:
            out["only_reference"][name] = sorted(ref - ours)
        if ours - ref:
            out["only_toonlab"][name] = sorted(ours - ref)
    return out


def _run_curate():
    """toonlab's run_curate, or None while it does not exist."""
    try:
        from toonlab.curate.run import run_curate
    except ImportError:
        return None
    return run_curate


# (shot ranges, keyframe indices) per source, by toonlab method, from its last timed run
SHOTS: dict[str, list[tuple]] = {}


def toonlab_curate(workers: int, executor: str = "local", name: str = "", **config) -> Callable:
    """A timed method: run_curate with `config` (CurateConfig fields); `name` records its shots in SHOTS."""

    def run(files: Sequence[Path]) -> dict:
        import pyarrow.parquet as pq

        from toonlab.curate.config import CurateConfig

        with tempfile.TemporaryDirectory(prefix="toonlab-bench-") as out:
            stats = _run_curate()(
                [str(p) for p in files], Path(out), CurateConfig(**config), workers=workers, executor=executor
            ).as_dict()
            rows = pq.read_table(Path(out) / "metadata").to_pylist()
        if name:
            SHOTS[name] = sorted(
                (Path(r["source"]).name, r["start_frame"], r["end_frame"], tuple(r["keyframe_indices"] or ()))
                for r in rows
            )
        if workers > 1 or config:
            rows = []
        by_file: dict[str, tuple[set[int], set[int]]] = {}
        for row in rows:
            starts, keys = by_file.setdefault(Path(row["source"]).name, (set(), set()))
            starts.add(row["start_frame"])
            keys.update(row["keyframe_indices"] or ())
        if workers == 1:
            _CHANGED["toonlab"] = {name: keys - starts for name, (starts, keys) in by_file.items()}
            _CHANGED["toonlab_starts"] = {name: starts for name, (starts, _) in by_file.items()}
        return {**{k: stats.get(k) for k in ("frames", "shots", "keyframes")}, "stats": stats}

    return run


def _toonlab_decoder_threads() -> int:
    """The decoder threads of a 1-worker default run (no thread count given, keyframes encoded)."""
    from toonlab.curate.stages.analyze import decoder_threads

    return decoder_threads(0, encodes=True)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (pool workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run_once(method: Callable[[Sequence[Path]], dict], files: Sequence[Path]) -> dict:
    """Wall and CPU seconds of one run (CPU is less sensitive to a loaded machine; Ray's workers are not
    children, so its CPU seconds are the driver's only), with the counts the method returns."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    counts = method(files)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - c0, **counts}


def _faster(best: dict | None, run: dict) -> dict:
    return run if best is None or run["seconds"] < best["seconds"] else best


def timed(method: Callable[[Sequence[Path]], dict], files: Sequence[Path], repeats: int) -> dict:
    """The fastest of `repeats` runs in a row (wall seconds, with that run's CPU seconds)."""
    best = None
    for _ in range(repeats):
        best = _faster(best, _run_once(method, files))
    return best


# ----------------------------------------------------------------------------------------------
# Shot F1 on the synthetic cut set


def toonlab_on_cut_set(clips: Sequence[SynthClip]) -> tuple[dict[str, list[int]], dict]:
    """toonlab's cut frames per clip file name, and how its keyframes agree with the ground truth.

    Cuts are every shot start and end except 0 and the last frame, so shots dropped by a length filter
    still show their boundaries. Keyframes are compared on shots whose range matches a true shot."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="toonlab-f1-") as out:
        _run_curate()([str(c.path) for c in clips], Path(out), workers=1)
        rows = pq.read_table(Path(out) / "metadata").to_pylist()
    by_stem = {c.path.stem: c for c in clips}
    cuts: dict[str, set[int]] = {c.path.name: set() for c in clips}
    found: dict[tuple[str, int, int], set[int]] = {}
    for row in rows:
        clip = by_stem.get(_row_stem(row))
        if clip is None:
            continue
        cuts[clip.path.name] |= {row["start_frame"], row["end_frame"]} - {0, clip.n_frames}
        found[(clip.path.name, row["start_frame"], row["end_frame"])] = set(row["keyframe_indices"] or ())
    agree = {
        "true_shots": 0,
        "matched_shots": 0,
        "identical_shots": 0,
        "kept_true": 0,
        "kept_found": 0,
        "kept_both": 0,
    }
    for clip in clips:
        for (start, end), true in zip(clip.shot_ranges, clip.keyframes, strict=True):
            agree["true_shots"] += 1
            got = found.get((clip.path.name, start, end))
            if got is None:
                continue
            agree["matched_shots"] += 1
            agree["identical_shots"] += got == set(true)
            agree["kept_true"] += len(true)
            agree["kept_found"] += len(got)
            agree["kept_both"] += len(got & set(true))
    return {name: sorted(v) for name, v in cuts.items()}, agree


def _row_stem(row: dict) -> str:
    for key in ("source", "path", "file_name", "video_id"):
        if row.get(key):
            return Path(str(row[key])).stem
    return ""


def shot_f1(clips: Sequence[SynthClip], with_toonlab: bool) -> dict:
    out = {"pyscenedetect": evaluate(lambda c: pyscenedetect_cuts(c.path), clips)}
    if with_toonlab:
        found, agreement = toonlab_on_cut_set(clips)
        out["toonlab"] = evaluate(lambda c: found[c.path.name], clips)
        out["toonlab_keyframes"] = agreement
    return out


# ----------------------------------------------------------------------------------------------


def per_file_runs(files: Sequence[Path], repeats: int, have_toonlab: bool) -> list[dict]:
    """fps of decode, PySceneDetect and toonlab (1 worker) on each file alone, with its codec and size."""
    import av

    rows = []
    for path in files:
        with av.open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            row = {"file": path.name, "codec": ctx.name, "size": f"{ctx.width}x{ctx.height}", "pix_fmt": ctx.pix_fmt}
        decode = timed(decode_only, [path], repeats)
        row["frames"] = decode["frames"]
        row["decode_fps"] = decode["frames"] / decode["seconds"]
        psd = timed(pyscenedetect, [path], repeats)
        row["pyscenedetect_fps"] = decode["frames"] / psd["seconds"]
        if have_toonlab:
            ours = timed(toonlab_curate(1), [path], repeats)
            row["toonlab_fps"] = decode["frames"] / ours["seconds"]
            row["toonlab_stage_seconds"] = ours["stats"].get("stage_seconds", {})
        rows.append(row)
    return rows


DECODE, PSD = "PyAV decode only (ceiling)", "PySceneDetect Adaptive (Sakuga settings, PyAV)"
DEFAULT, NONE = "toonlab default, 1 worker", "toonlab --image-format none, 1 worker"
LIMIT = "decode + JPEG of the same keyframes (limit of the default)"
LIMIT_TOONLAB = "the limit with toonlab's decoder threads"
OLD, OLD_NONE = "old path (reference kernels), 1 worker", "old path, --image-format none, 1 worker"
LOCAL2, RAY2 = "toonlab default, 2 workers (local)", "toonlab default, 2 workers (Ray)"


def methods(have_toonlab: bool, with_reference: bool, most_workers: int = 2) -> dict[str, Callable | None]:
    """The timed methods, in the order they run; toonlab's are None when run_curate is missing."""
    found: dict[str, Callable | None] = {DECODE: decode_only, PSD: pyscenedetect}
    if with_reference:
        found["Sakuga reference (split + SSIM keyframes)"] = sakuga_reference
    toonlab = {
        DEFAULT: toonlab_curate(1, name=DEFAULT),
        LIMIT: decode_and_encode,
        LIMIT_TOONLAB: lambda files: decode_and_encode(files, _toonlab_decoder_threads()),
        NONE: toonlab_curate(1, name=NONE, image_format="none"),
        OLD: toonlab_curate(1, name=OLD, kernels="reference"),
        OLD_NONE: toonlab_curate(1, name=OLD_NONE, kernels="reference", image_format="none"),
    }
    if most_workers >= 2:
        toonlab |= {LOCAL2: toonlab_curate(2), RAY2: toonlab_curate(2, "ray")}
    return found | {name: method if have_toonlab else None for name, method in toonlab.items()}


def throughput(files: Sequence[Path], timed_methods: dict[str, Callable | None], repeats: int) -> dict:
    """{method: {seconds, fps, counts}} for every method on `files`, plus "frames" (decoded frames): the fastest
    of `repeats` rounds, each round running every method once in turn, so a machine whose speed drifts during
    the bench weighs on all methods alike. Each method first runs once untimed on the shortest file, so one-time
    costs of a process (imports, first writes, numba's cache) weigh on none of them."""
    shortest = min(files, key=lambda p: p.stat().st_size)
    for method in timed_methods.values():
        if method is not None:
            method([shortest])
    total = decode_only(files)["frames"]
    runs: dict[str, dict | None] = dict.fromkeys(timed_methods)
    rounds: dict[str, list[float]] = {name: [] for name in timed_methods}  # wall seconds, round by round
    for round_number in range(1, repeats + 1):
        for name, method in timed_methods.items():
            if method is not None:
                run = _run_once(method, files)
                runs[name] = _faster(runs[name], run)
                rounds[name].append(run["seconds"])
                console.print(f"  round {round_number}, {name}: {total / run['seconds']:.0f} fps")
    for name, run in runs.items():
        if run is None:
            console.print(f"  {name}: missing")
        else:
            run["fps"] = total / run["seconds"]
            run["round_seconds"] = rounds[name]
    return {"frames": total, **runs}


def fast_vs_reference() -> dict:
    """Do the fast and the reference path find the same shots and keyframe indices (last runs)?"""
    out = {}
    for fast, old in ((DEFAULT, OLD), (NONE, OLD_NONE)):
        if fast in SHOTS and old in SHOTS:
            a, b = set(SHOTS[fast]), set(SHOTS[old])
            out[fast] = {"shots": len(a), "identical": a == b, "only_fast": len(a - b), "only_reference": len(b - a)}
    return out


def media_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix != ".json")


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=ROOT / ".cache/media/clips")
    parser.add_argument("--quick", action="store_true", help="fewer files, one repeat, a small memory test")
    parser.add_argument("--repeats", type=int, default=None, help="best of N timings (default 3, quick 1)")
    parser.add_argument("--with-synth", action="store_true", help="add the synthetic cut set to the timed files")
    parser.add_argument("--per-file", action="store_true", help="also time decode / PySceneDetect / toonlab per file")
    parser.add_argument("--long", type=int, default=0, help="also time a generated N-frame 640x480 H.264 file")
    parser.add_argument("--with-reference", action="store_true", help="add the Sakuga reference (slow, skimage)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/curate_bench.json")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)

    work = Path(tempfile.mkdtemp(prefix="toonlab-bench-"))
    clips = standard_cut_set(work / "cutset")
    files = media_files(args.media) if args.media.is_dir() else []
    if args.quick:
        files = sorted(files, key=lambda p: p.stat().st_size)[:4]
    if args.with_synth or not files:
        files += [c.path for c in clips]
    have_toonlab = _run_curate() is not None
    if have_toonlab:  # compile the kernels (or load numba's cache) before anything is timed
        from toonlab.curate.stages.analyze.kernels import warm_up

        warm_up()
    if not have_toonlab:
        console.print("[yellow]toonlab.curate.run.run_curate is missing: its rows are marked missing[/]")

    runs = throughput(files, methods(have_toonlab, args.with_reference), repeats)
    agreement = real_keyframe_agreement()
    long_runs = None
    if args.long:
        long_file = long_video(ROOT / "benchmarks/results", args.long)
        long_runs = {"file": str(long_file), **throughput([long_file], methods(have_toonlab, False, 1), repeats)}
    agreement = real_keyframe_agreement()
    per_file = per_file_runs(files, repeats, have_toonlab) if args.per_file else None
    f1 = shot_f1(clips, have_toonlab)
    memory = None
    if have_toonlab:
        memory = memory_vs_length(work, 96 if args.quick else 480, (320, 240) if args.quick else (640, 360))

    results = {
        "files": [str(p) for p in files],
        "frames": runs["frames"],
        "repeats": repeats,
        "load_average": os.getloadavg(),
        "long": long_runs,
        "cpu_count": os.cpu_count(),
        "methods": runs,
        "fast_vs_reference": fast_vs_reference(),
        "keyframe_agreement_real": agreement,
        "per_file": per_file,
        "shot_f1": f1,
        "memory": memory,
    }
    report(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"results: {args.json}")
    shutil.rmtree(work, ignore_errors=True)
    return results


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "missing" if x is None else format(x, spec)


def throughput_table(title: str, runs: dict) -> None:
    """One table of fps and ratios (to the decode ceiling and to PySceneDetect), then the targets."""
    fps = {name: r["fps"] for name, r in runs.items() if isinstance(r, dict) and "fps" in r}
    ceiling, psd = fps.get(DECODE), fps.get(PSD)
    table = Table(title=title)
    cols = ("method", "seconds", "fps", "/ decode", "/ PySceneDetect", "CPU ms/frame", "frames", "shots", "keyframes")
    for col in cols:
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, r in runs.items():
        if name in ("file", "frames"):
            continue
        f = fps.get(name)
        table.add_row(
            name,
            _fmt(r and r["seconds"], ".2f"),
            _fmt(f),
            _fmt(f and f / ceiling, ".2f"),
            _fmt(f and f / psd, ".2f"),
            _fmt(r and 1e3 * r["cpu_seconds"] / runs["frames"], ".2f"),
            *(str((r or {}).get(k, "")) for k in ("frames", "shots", "keyframes")),
        )
    console.print(table)
    stats = (runs.get(DEFAULT) or {}).get("stats")
    if stats:
        stage = {k: round(v, 2) for k, v in stats.get("stage_seconds", {}).items()}
        failed = stats.get("failed_by_stage")
        console.print(f"toonlab default (1 worker) stage seconds {stage}, failed by stage {failed}")

    limit = max((LIMIT, LIMIT_TOONLAB), key=lambda name: fps.get(name) or 0.0)

    def ratio(a: str, b: str | None) -> str:
        return _fmt(fps.get(a) / fps[b] if fps.get(a) and b and fps.get(b) else None, ".2f")

    def per_round(a: str, b: str) -> str:
        """a's fps over b's within each round, then their median: the two ran minutes apart at most."""
        sa, sb = ((runs.get(name) or {}).get("round_seconds") for name in (a, b))
        if not sa or not sb:
            return "missing"
        each = [y / x for x, y in zip(sa, sb, strict=True)]
        return f"{statistics.median(each):.2f} (" + " / ".join(f"{r:.2f}" for r in each) + ")"

    scaling = f"; 2 workers/1: local {ratio(LOCAL2, DEFAULT)} (>= 1.8), Ray/local {ratio(RAY2, LOCAL2)}"
    console.print(
        f"targets: default/decode {ratio(DEFAULT, DECODE)} (>= 0.7), default/PySceneDetect {ratio(DEFAULT, PSD)} "
        f"(>= 2), metadata-only/decode {ratio(NONE, DECODE)} (>= 0.85); fast/old: default {ratio(DEFAULT, OLD)}, "
        f"metadata-only {ratio(NONE, OLD_NONE)}; default/its limit (decode + the same JPEGs, the faster decoder "
        f"setting) {ratio(DEFAULT, limit)}" + (scaling if LOCAL2 in fps else "")
    )
    console.print(
        f"round by round (median, each round's): default/decode {per_round(DEFAULT, DECODE)}, default/PySceneDetect "
        f"{per_round(DEFAULT, PSD)}, metadata-only/decode {per_round(NONE, DECODE)}, default/its limit "
        f"{per_round(DEFAULT, limit)}"
    )


def report(results: dict) -> None:
    console.print(f"load average at the end (1, 5, 15 min): {results['load_average']}, cpus {results['cpu_count']}")
    title = f"curate throughput: {len(results['files'])} files, {results['frames']} frames"
    throughput_table(title, results["methods"])
    if results.get("long"):
        long = results["long"]
        throughput_table(f"curate throughput: {Path(long['file']).name}, {long['frames']} frames", long)
    console.print(f"fast vs reference path (shots + keyframe indices): {results['fast_vs_reference']}")
    console.print(
        "note: the Sakuga reference reads the sources directly (the release re-encodes every scene with "
        "ffmpeg first and writes a keyframe video; both are left out, so it is faster here than as released)."
    )

    f1 = Table(title="shot F1 on the synthetic cut set (cuts within +-1 frame, pooled)")
    for col in ("detector", "precision", "recall", "F1", "errors"):
        f1.add_column(col)
    for name in ("pyscenedetect", "toonlab"):
        r = results["shot_f1"].get(name)
        if r is None:
            f1.add_row(name, "missing", "missing", "missing", "")
            continue
        errs = [f"{kind}: {e}" for v in r["errors"].values() for kind in ("missed", "false") for e in v[kind]]
        f1.add_row(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", "\n".join(errs))
    console.print(f1)
    kf = results["shot_f1"].get("toonlab_keyframes")
    if kf:
        precision = kf["kept_both"] / max(1, kf["kept_found"])
        recall = kf["kept_both"] / max(1, kf["kept_true"])
        console.print(
            "toonlab keyframes vs the reference rule on the cut set: "
            f"{kf['identical_shots']}/{kf['matched_shots']} matched shots identical "
            f"({kf['matched_shots']}/{kf['true_shots']} true shots matched); "
            f"kept frames precision {precision:.3f}, recall {recall:.3f}"
        )

    kf = results.get("keyframe_agreement_real")
    if kf:
        console.print(
            f"keyframes on the real files (the released rule vs toonlab, shot starts aside): reference "
            f"{kf['reference']}, toonlab {kf['toonlab']}, both {kf['both']}; only reference "
            f"{kf['only_reference'] or 'none'}, only toonlab {kf['only_toonlab'] or 'none'}"
        )
    if results.get("per_file"):
        table = Table(title="per file (fps; toonlab 1 worker)")
        cols = ("file", "codec", "size", "pix_fmt", "frames", "decode", "PySceneDetect", "toonlab", "/ decode")
        for col in cols:
            table.add_column(col, justify="left" if col in cols[:4] else "right")
        for row in results["per_file"]:
            ours = row.get("toonlab_fps")
            table.add_row(
                row["file"],
                row["codec"],
                row["size"],
                row["pix_fmt"],
                str(row["frames"]),
                f"{row['decode_fps']:.0f}",
                f"{row['pyscenedetect_fps']:.0f}",
                _fmt(ours),
                _fmt(ours and ours / row["decode_fps"], ".2f"),
            )
        console.print(table)

    mem = results["memory"]
    if mem:
        n = sorted(int(k) for k in mem if k.isdigit())
        console.print(
            f"peak memory (max RSS, {mem['size'][0]}x{mem['size'][1]}): "
            f"import only {mem['import_only_kib'] / 1024:.0f} MiB, "
            f"{n[0]} frames {mem[str(n[0])] / 1024:.0f} MiB, {n[1]} frames {mem[str(n[1])] / 1024:.0f} MiB, "
            f"ratio {mem['ratio_4n_over_n']:.2f} (flat ~ 1)"
        )
    else:
        console.print("peak memory vs length: missing (no run_curate)")


if __name__ == "__main__":
    main()
