"""`run_curate` and `toonlab curate` end to end on synthetic clips: rows, shards, errors, resume."""

from __future__ import annotations

import io
import json
import tarfile

import av
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.curate.config import CurateConfig
from toonlab.curate.run import RunError, run_curate
from toonlab.curate.write import LEDGER, dataset_schema

runner = CliRunner()


def _rows(out) -> list[dict]:
    return sorted(ds.dataset(out / "metadata").to_table().to_pylist(), key=lambda r: r["identifier"])


def _samples(out, folder: str = "shards") -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted((out / folder).glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                key, ext = member.name.split(".", 1)
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


@pytest.fixture(scope="module")
def curated(tmp_path_factory, two_clips):
    out = tmp_path_factory.mktemp("out")
    stats = run_curate([str(c.path) for c in two_clips], out)
    return out, stats


def test_rows_match_ground_truth(curated, two_clips):
    out, stats = curated
    rows = _rows(out)
    expected = [(clip, i) for clip in two_clips for i in range(len(clip.shot_ranges))]
    assert len(rows) == len(expected) == stats.shots
    by_source = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    for clip in two_clips:
        got = sorted(by_source[str(clip.path)], key=lambda r: r["shot_index"])
        assert [(r["start_frame"], r["end_frame"]) for r in got] == list(clip.shot_ranges)
        assert [tuple(r["keyframe_indices"]) for r in got] == list(clip.keyframes)
        for r in got:
            assert r["key_frame_number"] == len(r["keyframe_indices"])
            assert r["dynamic_score"] == r["key_frame_number"] / r["frame_number"]
            assert r["fps"] == 24.0 and r["fps_rational"] == "24/1"
            assert r["identifier"] == f"{r['video_id']}:{r['shot_index']}"
            assert "." not in r["key"]
    timings = {r["source"].rsplit("/", 1)[-1] + str(r["shot_index"]): r["timing"] for r in rows}
    assert timings == {"a.mp41": "twos", "a.mp42": "ones", "b.mp41": "threes", "b.mp42": "still"}
    assert rows[0]["scene_start_time"] == "00:00:00.000"
    assert stats.frames == sum(c.n_frames for c in two_clips)
    assert stats.keyframes == sum(len(k) for c in two_clips for k in c.keyframes)


def test_parquet_schema_is_the_contract(curated):
    out, _ = curated
    for path in (out / "metadata").glob("*.parquet"):
        assert pq.read_schema(path).remove_metadata() == dataset_schema()


def test_shards_hold_one_sample_per_keyframe_with_fixed_members(curated):
    out, _ = curated
    rows = {r["key"]: r for r in _rows(out)}
    samples = _samples(out)
    assert set(samples) == {f"{k}_{i:06d}" for k, r in rows.items() for i in r["keyframe_indices"]}
    for key, members in samples.items():
        assert set(members) == {"json", "jpg"}
        doc = json.loads(members["json"])
        row = rows[doc["shot"]]
        assert doc["identifier"] == row["identifier"] and doc["caption"] == ""
        assert row["keyframe_indices"][doc["position"]] == doc["frame"] and key == f"{row['key']}_{doc['frame']:06d}"
        assert (doc["keyframes"], doc["start_frame"], doc["end_frame"]) == (
            row["key_frame_number"],
            row["start_frame"],
            row["end_frame"],
        )
        with av.open(io.BytesIO(members["jpg"])) as img:
            frame = next(img.decode(video=0))
            assert (frame.width, frame.height) == (row["width"], row["height"])


def test_stats_file(curated):
    out, stats = curated
    saved = json.loads((out / "_stats.json").read_text())
    assert saved["sources"] == {"total": 2, "ok": 2, "failed": 0, "skipped_done": 0}
    assert saved["shots"] == stats.shots and saved["frames"] == stats.frames
    assert {"decode", "analyze", "encode"} <= set(saved["stage_seconds"])


def test_rerun_skips_finished_sources(tmp_path, two_clips):
    inputs = [str(c.path) for c in two_clips]
    run_curate(inputs, tmp_path)
    before = _rows(tmp_path)
    (tmp_path / "shards" / "00099.tar").write_bytes(b"orphan of a killed run")  # not in the ledger
    with open(tmp_path / LEDGER, "a") as fh:
        fh.write('{"kind": "shard", "shard": "000')  # a line cut short by a kill
    stats = run_curate(inputs, tmp_path)
    assert stats.sources.skipped_done == 2 and stats.sources.ok == 0
    assert _rows(tmp_path) == before
    assert not (tmp_path / "shards" / "00099.tar").exists()


def test_bad_inputs_become_error_rows(tmp_path, two_clips, bad_inputs):
    inputs = [str(p) for p in bad_inputs.values()] + [str(two_clips[1].path)]
    stats = run_curate(inputs, tmp_path)
    assert stats.sources.ok == 1 and stats.sources.failed == len(bad_inputs)
    errors = {r["source"]: r for r in pq.read_table(tmp_path / "errors.parquet").to_pylist()}
    assert set(errors) == {str(p) for p in bad_inputs.values()}
    reasons = {name: errors[str(path)]["reason"] for name, path in bad_inputs.items()}
    assert "empty file" in reasons["empty"]
    assert "no video stream" in reasons["audio_only"]
    for name, reason in reasons.items():
        assert errors[str(bad_inputs[name])]["stage"] == "decode", (name, reason)
        assert len(reason) > 10 and "Traceback" not in reason
    assert len(_rows(tmp_path)) == len(two_clips[1].shot_ranges)


def test_duplicate_bytes_are_reported_once(tmp_path, two_clips):
    copy = tmp_path / "copy_of_a.mp4"
    copy.write_bytes(two_clips[0].path.read_bytes())
    stats = run_curate([str(two_clips[0].path), str(copy)], tmp_path / "out")
    assert stats.as_dict()["sources"] == {"total": 2, "ok": 1, "failed": 1, "skipped_done": 0}
    errors = pq.read_table(tmp_path / "out" / "errors.parquet").to_pylist()
    assert errors[0]["stage"] == "dedup" and str(two_clips[0].path) in errors[0]["reason"]


def test_two_workers_give_the_same_rows(tmp_path, two_clips, curated):
    run_curate([str(c.path) for c in two_clips], tmp_path, workers=2)
    strip = ("shard",)
    one = [{k: v for k, v in r.items() if k not in strip} for r in _rows(curated[0])]
    two = [{k: v for k, v in r.items() if k not in strip} for r in _rows(tmp_path)]
    assert one == two


@pytest.mark.parametrize("mode", ["copy", "encode"])
def test_clip_files(tmp_path, two_clips, mode):
    clip = two_clips[1]
    run_curate([str(clip.path)], tmp_path, CurateConfig(clips=mode))
    rows = {r["key"]: r for r in _rows(tmp_path)}
    clips = _samples(tmp_path, "clips")
    assert set(clips) == set(rows)
    for key, members in clips.items():
        assert set(members) == {"json", "mp4"} and json.loads(members["json"])["shot"] == key
        with av.open(io.BytesIO(members["mp4"])) as video:
            n = sum(1 for _ in video.decode(video=0))
        if mode == "encode":
            assert n == rows[key]["frame_number"]
        else:
            assert n >= rows[key]["frame_number"] - 1


def test_cli_exit_codes_and_no_traceback(tmp_path, two_clips, bad_inputs):
    good = str(two_clips[0].path)
    result = runner.invoke(app, ["curate", good, str(bad_inputs["random"]), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "random.mkv" in result.output
    result = runner.invoke(app, ["curate", good, str(bad_inputs["empty"]), "--out", str(tmp_path / "s"), "--strict"])
    assert result.exit_code == 1
    assert runner.invoke(app, ["curate", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "x")]).exit_code == 2
    assert runner.invoke(app, ["curate", good, "--out", str(tmp_path / "y"), "--clips", "bogus"]).exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert runner.invoke(app, ["curate", good, "--out", str(blocker / "out")]).exit_code == 2


def test_run_error_on_bad_workers(tmp_path, two_clips):
    with pytest.raises(RunError):
        run_curate([str(two_clips[0].path)], tmp_path, workers=0)


def test_metadata_only_run_and_spool_is_consumed(tmp_path, two_clips):
    (tmp_path / "_spool").mkdir()
    (tmp_path / "_spool" / "left-by-a-kill.spool").write_bytes(b"x" * 100)
    run_curate([str(c.path) for c in two_clips], tmp_path, CurateConfig(image_format="none"))
    assert list((tmp_path / "_spool").iterdir()) == []
    samples = _samples(tmp_path)
    assert samples and all(set(members) == {"json"} for members in samples.values())
    kept = sum(len(r["keyframe_indices"]) for r in _rows(tmp_path))
    assert kept == sum(len(k) for c in two_clips for k in c.keyframes)


def test_decoder_threads_leave_the_encoders_their_cpus(tmp_path, two_clips, monkeypatch):
    """Given no thread count, a stage that encodes keyframes decodes on the CPUs its encoders leave (at least
    one); a metadata-only stage lets FFmpeg choose (0); a given count is used as it is."""
    import os

    from toonlab.curate.records import VideoRef
    from toonlab.curate.stages import analyze
    from toonlab.curate.stages.analyze.images import YuvJpegEncoder

    opened: list[int] = []
    real = analyze.VideoDecoder
    monkeypatch.setattr(
        analyze, "VideoDecoder", lambda path, threads, pixels: opened.append(threads) or real(path, threads, pixels)
    )
    clip = two_clips[0]
    for cpus, images, threads in (
        (6, YuvJpegEncoder(), 0),
        (2, YuvJpegEncoder(), 0),
        (6, None, 0),
        (6, YuvJpegEncoder(), 3),
    ):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)))
        stage = analyze.AnalyzeStage(0.95, 8, "animation", images, tmp_path / "spool", threads)
        result = stage.process(VideoRef(str(clip.path), clip.path))
        assert result.probe.frame_count == clip.n_frames
    assert opened == [6 - analyze.ENCODE_THREADS, 1, 0, 3]
