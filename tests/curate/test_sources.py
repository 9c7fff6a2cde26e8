"""Inputs: URL lists, direct URLs and Sakuga-42M parquet files, then a Sakuga parquet curated end to end from a
loopback HTTP server (one download per post, released scenes cut at the stream's frame rate, NaN rows counted)."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from http_media import MediaServer, Route
from synth import ShotSpec, write_clip
from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.sources import InputError, collect_sources, parse_timecode
from toonlab.curate.stages.analyze.shots import GivenShots
from toonlab.curate.stages.download import DownloadConfig
from toonlab.curate.write import timecode

FPS = Fraction(24000, 1001)  # the demo post's real stream rate; its parquet row says 29.97
FAST = DownloadConfig(timeout=2.0, retries=1, backoff=0.01, host_delay=0.0)


def sakuga_table(rows: list[dict]) -> pa.Table:
    """Rows in the release's column names and types (strings for times, double fps), plus a few extra columns."""
    columns = ["identifier", "url_link", "scene_start_time", "scene_end_time", "fps", "frame_number", "rating"]
    data = {c: [r.get(c) for r in rows] for c in columns}
    types = {"fps": pa.float64(), "frame_number": pa.float64()}
    return pa.table({c: pa.array(v, type=types.get(c, pa.string())) for c, v in data.items()})


def test_url_list_comments_blank_lines_and_duplicates(tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "\ufeff# clips to fetch\n\nhttps://a.example/x.mp4\n  http://b.example/y.webm  \n# https://skip.example/z\n"
        "https://a.example/x.mp4\nnot a url\n"
    )
    refs = collect_sources([str(listing), "https://c.example/direct.mp4"]).refs
    assert [r.source for r in refs] == [
        "https://a.example/x.mp4",
        "http://b.example/y.webm",
        "not a url",  # kept: the download stage makes it an error row
        "https://c.example/direct.mp4",
    ]
    assert all(r.url == r.source and r.path is None and r.scenes is None for r in refs)


def test_timecodes():
    assert parse_timecode("00:00:10.719") == pytest.approx(10.719)
    assert parse_timecode("01:02:03.5") == pytest.approx(3723.5)
    assert parse_timecode("00:00:00.125") == pytest.approx(0.125)
    for bad in ("10.7", "00:61:00.000", "aa:00:00.000", "", "00:00:-1.0"):
        assert parse_timecode(bad) is None, bad


def test_given_shots_at_the_stream_rate():
    """The demo post: scene 2 runs 0.125-10.719 s; at 24000/1001 that is frames [3, 257), the whole 257-frame
    stream after the 3-frame scene 1 the release left out. At the parquet's wrong 29.97 it would end past the
    stream."""
    given = GivenShots([(2, 0.125, 10.719)], FPS)
    assert given.shots(257) == [(2, 3, 257)]
    assert given.push(0, [None] * 16) == [3] and given.push(16, [None] * 16) == []
    assert GivenShots([(2, 0.125, 10.719)], Fraction(2997, 100)).ranges == [(2, 4, 321)]
    assert GivenShots([(1, 20.0, 30.0)], FPS).shots(257) == []  # outside the stream


def test_sakuga_parquet_grouped_by_post_with_counted_drops(tmp_path):
    url = "https://www.sakugabooru.com/data/{}.mp4".format
    rows = [
        {"identifier": "200:3", "url_link": url("b" * 32), "scene_start_time": "00:00:02.000",
         "scene_end_time": "00:00:03.000", "fps": 24.0},
        {"identifier": "1000:2", "url_link": url("a" * 32), "scene_start_time": "00:00:00.125",
         "scene_end_time": "00:00:10.719", "fps": 29.97},
        {"identifier": "200:1", "url_link": url("b" * 32), "scene_start_time": "00:00:00.000",
         "scene_end_time": "00:00:01.500", "fps": 24.0},
        {"identifier": "200:4", "url_link": url("b" * 32), "scene_start_time": "00:00:03.000",
         "scene_end_time": None, "fps": 24.0},
        {"identifier": "200:5", "url_link": url("b" * 32), "scene_start_time": "00:00:04.000",
         "scene_end_time": "00:00:05.000", "fps": float("nan")},
        {"identifier": "200:1", "url_link": url("b" * 32), "scene_start_time": "00:00:00.000",
         "scene_end_time": "00:00:01.500", "fps": 24.0},
        {"identifier": "oops", "url_link": url("c" * 32), "scene_start_time": "00:00:00.000",
         "scene_end_time": "00:00:01.000", "fps": 24.0},
        {"identifier": "300:1", "url_link": url("d" * 32), "scene_start_time": "00:00:02.000",
         "scene_end_time": "00:00:01.000", "fps": 24.0},
        {"identifier": "300:2", "url_link": url("e" * 32), "scene_start_time": "00:00:02.000",
         "scene_end_time": "00:00:03.000", "fps": 24.0},
        {"identifier": "300:3", "url_link": url("d" * 32), "scene_start_time": "0:0:2",
         "scene_end_time": "00:00:03.000", "fps": 24.0},
    ]  # fmt: skip
    path = tmp_path / "split.parquet"
    pq.write_table(sakuga_table(rows), path)
    sources = collect_sources([str(path)])
    assert [(r.video_id, r.scenes) for r in sources.refs] == [
        ("200", ((1, 0.0, 1.5), (3, 2.0, 3.0))),
        ("300", ((2, 2.0, 3.0),)),
        ("1000", ((2, 0.125, 10.719),)),
    ]
    assert all(r.source == r.url and r.url.startswith("https://www.sakugabooru.com/data/") for r in sources.refs)
    assert dict(sources.dropped) == {
        "NaN scene_end_time": 1,
        "NaN fps": 1,
        "repeated identifier": 1,
        "malformed identifier (want <post>:<scene>)": 1,
        "empty scene (end <= start)": 1,
        "post listed with two different url_link values": 1,
    }  # 300:3's "0:0:2" is a valid time: it joins post 300... with url d, which differs from 300's first url e
    pq.write_table(pa.table({"identifier": ["1:1"]}), tmp_path / "other.parquet")
    with pytest.raises(InputError, match="not in the Sakuga-42M schema"):
        collect_sources([str(tmp_path / "other.parquet")])


@pytest.fixture(scope="module")
def sakuga_post(tmp_path_factory):
    """A 23.976 fps synthetic post of three shots, served as Sakugabooru serves media: `data/<md5>.mp4`."""
    folder = tmp_path_factory.mktemp("post")
    clip = write_clip(
        folder / "post.mp4",
        [ShotSpec(40, 2, seed=41), ShotSpec(30, 1, seed=42), ShotSpec(36, 3, seed=43)],
        fps=FPS,
        size=(160, 120),
    )
    body = clip.path.read_bytes()
    return clip, body, hashlib.md5(body).hexdigest()


def test_sakuga_parquet_end_to_end(tmp_path, sakuga_post):
    clip, body, md5 = sakuga_post
    (s1, e1), (s2, e2), (s3, e3) = clip.shot_ranges
    with MediaServer() as server:
        url = server.add(f"/data/{md5}.mp4", Route(body))
        missing = server.url(f"/data/{'0' * 32}.mp4")  # 404, like the 340 posts a mirror could not fetch

        def row(identifier, start, end, link=url, fps=29.97):
            return {"identifier": identifier, "url_link": link, "scene_start_time": start, "scene_end_time": end,
                    "fps": fps, "frame_number": 1.0, "rating": "general"}  # fmt: skip

        rows = [
            row("140633:2", timecode(s2 / FPS), timecode(e2 / FPS)),  # released scene numbers need not be 1..n
            row("140633:5", timecode(s3 / FPS), timecode(e3 / FPS)),
            row("140633:7", timecode(10 / FPS), timecode(30 / FPS)),  # a scene inside the first shot
            row("140633:9", "00:00:01.000", None),  # NaN end: dropped, counted
            row("140633:11", "00:01:00.000", "00:01:02.000"),  # past the end of the stream
            row("999:1", "00:00:00.000", "00:00:01.000", link=missing),
        ]
        parquet = tmp_path / "sakuga.parquet"
        pq.write_table(sakuga_table(rows), parquet)
        config = CurateConfig(download=FAST, download_cache=str(tmp_path / "cache"))
        stats = run_curate([str(parquet)], tmp_path / "out", config, workers=1)
        assert server.count(f"/data/{md5}.mp4") == 1  # one download for the post's four rows

        detect = CurateConfig(download=FAST, download_cache=str(tmp_path / "cache"), shots="detect")
        redetected = run_curate([str(parquet)], tmp_path / "detect", detect, workers=1)
        assert server.count(f"/data/{md5}.mp4") == 1  # the cache serves the second run

    assert stats["sources"] == {"total": 2, "ok": 1, "failed": 1, "skipped_done": 0}
    assert stats["dropped"] == {"NaN scene_end_time": 1, "released scene outside the decoded stream": 1}
    errors = pq.read_table(tmp_path / "out" / "errors.parquet").to_pylist()
    assert [(e["source"], e["stage"], e["reason"]) for e in errors] == [(missing, "download", "HTTP 404 Not Found")]

    rows_out = {r["identifier"]: r for r in ds.dataset(tmp_path / "out" / "metadata").to_table().to_pylist()}
    assert set(rows_out) == {"140633:2", "140633:5", "140633:7"}
    assert {k: (r["start_frame"], r["end_frame"]) for k, r in rows_out.items()} == {
        "140633:2": (s2, e2),
        "140633:5": (s3, e3),
        "140633:7": (10, 30),
    }
    truth = dict(zip(clip.shot_ranges, clip.keyframes, strict=True))
    assert tuple(rows_out["140633:2"]["keyframe_indices"]) == truth[(s2, e2)]
    assert tuple(rows_out["140633:5"]["keyframe_indices"]) == truth[(s3, e3)]
    assert tuple(rows_out["140633:7"]["keyframe_indices"]) == (10, *(k for k in truth[(s1, e1)] if 10 < k < 30))
    for r in rows_out.values():
        assert r["video_id"] == "140633" and r["url_link"] == url and r["source"] == url
        assert r["fps_rational"] == "24000/1001" and r["fps"] == pytest.approx(23.976, abs=1e-3)
        assert r["key"] == f"140633_{int(r['identifier'].split(':')[1]):04d}"
        assert r["dynamic_score"] == r["key_frame_number"] / r["frame_number"]

    detected = ds.dataset(tmp_path / "detect" / "metadata").to_table().to_pylist()
    assert sorted((r["identifier"], r["start_frame"], r["end_frame"]) for r in detected) == [
        ("140633:1", s1, e1),
        ("140633:2", s2, e2),
        ("140633:3", s3, e3),
    ]
    assert redetected["dropped"] == {"NaN scene_end_time": 1}


def test_shots_given_without_scenes_is_an_error_row(tmp_path, two_clips):
    stats = run_curate([str(two_clips[0].path)], tmp_path, CurateConfig(shots="given"))
    assert stats["failed_by_stage"] == {"shots": 1}
    reason = pq.read_table(tmp_path / "errors.parquet").to_pylist()[0]["reason"]
    assert "needs released scenes" in reason


def test_cli_scale_options_are_checked(tmp_path, two_clips):
    runner = CliRunner()
    good = str(two_clips[0].path)
    for bad in (["--shots", "maybe"], ["--executor", "spark"], ["--ray-address", "auto"], ["--host-delay", "-1"]):
        result = runner.invoke(app, ["curate", good, "--out", str(tmp_path / "x"), *bad])
        assert result.exit_code == 2, (bad, result.output)
    both = [str(c.path) for c in two_clips]
    result = runner.invoke(
        app, ["curate", *both, "--out", str(tmp_path / "y"), "--shots", "detect", "--shard-samples", "1"]
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "y" / "shards").glob("*.tar"))) == 2  # a shard closes once it holds >= 1 sample
