"""Downloads against a real HTTP server on loopback: good media, slow answers, 404, 500, truncated bodies, HTML
pages with status 200, MD5 mismatches, size caps; per-host pacing; the cache; the download stage's error rows."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from http_media import MediaServer, Route

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.stages.download import (
    DownloadConfig,
    Downloader,
    DownloadError,
    HostGate,
    _part,
    expected_md5,
    remove_stale_parts,
    safe_name,
)

FAST = DownloadConfig(timeout=0.4, retries=2, backoff=0.01, backoff_max=0.05, host_delay=0.0, max_bytes=5_000_000)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def server():
    with MediaServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def media(two_clips) -> dict[str, bytes]:
    return {c.path.name: c.path.read_bytes() for c in two_clips}


def test_safe_names_never_traverse(tmp_path):
    assert safe_name("%2e%2e%2f%2e%2e%2fetc%2fpasswd") == "passwd"
    assert safe_name("..") == "download" and safe_name("") == "download" and safe_name("...") == "download"
    assert safe_name("a b?c*.MP4") == "a_b_c_.MP4"
    assert safe_name(".hidden.mp4") == "hidden.mp4"
    assert safe_name("..\\..\\windows\\evil.exe") == "evil.exe"
    assert len(safe_name("x" * 500 + ".mp4")) == 100 and safe_name("x" * 500 + ".mp4").endswith(".mp4")
    downloader = Downloader(FAST, tmp_path / "cache")
    for url in ("http://h/../../x.mp4", "http://h/a/%2e%2e/%2e%2e/y.mp4", "http://h/", "http://h/..%2F..%2Fz"):
        path = downloader.cache_path(url).resolve()
        assert path.is_relative_to((tmp_path / "cache").resolve()), url
        assert path.parent.parent.parent == (tmp_path / "cache").resolve()


def test_expected_md5_from_sakugabooru_names():
    md5 = "44f59053d37f1c1269e0ea6199a50b25"
    assert expected_md5(f"https://www.sakugabooru.com/data/{md5}.mp4") == md5
    assert expected_md5(f"https://www.sakugabooru.com/data/{md5.upper()}.webm?x=1") == md5
    assert expected_md5("https://example.org/data/clip.mp4") is None
    assert expected_md5("https://example.org/data/44f59053d37f1c1269e0ea6199a50b2.mp4") is None  # 31 digits


def test_fetch_verifies_md5_and_caches(tmp_path, server, media):
    body = media["a.mp4"]
    good = server.add(f"/data/{_md5(body)}.mp4", Route(body))
    bad = server.add(f"/data/{_md5(b'other bytes')}.mp4", Route(body))
    downloader = Downloader(FAST, tmp_path)
    fetched = downloader.fetch(good)
    assert fetched.path.read_bytes() == body and not fetched.cached and fetched.attempts == 1
    assert downloader.fetch(good).cached and server.count(f"/data/{_md5(body)}.mp4") == 1
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        downloader.fetch(bad)
    assert server.count(f"/data/{_md5(b'other bytes')}.mp4") == 1  # a failed check is not retried
    assert not list(tmp_path.rglob("*.part")) and not downloader.cache_path(bad).exists()


def test_retries_5xx_until_success_but_never_4xx(tmp_path, server, media):
    flaky = server.add("/flaky.mp4", Route(media["b.mp4"], fail_first=2, fail_status=503))
    gone = server.add("/gone.mp4", Route(b"", status=410, content_type="text/plain"))
    downloader = Downloader(FAST, tmp_path)
    assert downloader.fetch(flaky).attempts == 3 and server.count("/flaky.mp4") == 3
    with pytest.raises(DownloadError, match="HTTP 410") as exc:
        downloader.fetch(gone)
    assert exc.value.status == 410 and server.count("/gone.mp4") == 1


def test_redirects_followed_within_http(tmp_path, server, media):
    target = server.add("/real.mp4", Route(media["a.mp4"]))
    moved = server.add("/moved.mp4", Route(status=302, content_type=None, location=target))
    fetched = Downloader(FAST, tmp_path).fetch(moved)
    assert fetched.path.read_bytes() == media["a.mp4"] and fetched.path.name == "moved.mp4"
    elsewhere = server.add("/ftp.mp4", Route(status=302, content_type=None, location="ftp://127.0.0.1/x.mp4"))
    with pytest.raises(DownloadError, match="redirect to a non-http"):
        Downloader(FAST, tmp_path).fetch(elsewhere)


def test_size_cap_on_declared_and_received_bytes(tmp_path, server):
    big = server.add("/big.mp4", Route(b"\0" * 4096))
    small_cap = DownloadConfig(timeout=0.4, retries=0, host_delay=0.0, max_bytes=1000, chunk=512)
    downloader = Downloader(small_cap, tmp_path)
    with pytest.raises(DownloadError, match="too large: 4096 bytes declared"):
        downloader.fetch(big)
    server.routes["/big.mp4"] = Route(b"\0" * 4096, declared_length=-1)  # no Content-Length: read until close
    with pytest.raises(DownloadError, match="more than 1000 bytes received"):
        downloader.fetch(big)
    assert not downloader.cache_path(big).exists() and not list(tmp_path.rglob("*.part"))


def test_host_delay_across_threads(tmp_path, server, media):
    """Four downloads from two threads: the server sees their starts at least `host_delay` apart."""
    delay = 0.2
    urls = [server.add(f"/p{i}.mp4", Route(media["a.mp4"])) for i in range(4)]
    downloader = Downloader(DownloadConfig(timeout=2.0, retries=0, host_delay=delay), tmp_path)
    threads = [threading.Thread(target=lambda us=us: [downloader.fetch(u) for u in us]) for us in (urls[:2], urls[2:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.times()) == 4
    times = downloader.gate.starts(urls[0])  # client-side starts: server stamps lag on a busy machine
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= delay, gaps


def test_stale_parts_of_dead_processes_are_removed(tmp_path):
    folder = tmp_path / "ab" / "abcdef"
    folder.mkdir(parents=True)
    mine = _part(folder, "x.mp4")
    mine.write_bytes(b"in progress")
    dead_pid = 2**22 + 12345  # above the default pid_max, so no live process has it
    dead = folder / mine.name.replace(f".{os.getpid()}.", f".{dead_pid}.")
    dead.write_bytes(b"left by a kill -9")
    assert remove_stale_parts(tmp_path) == 1
    assert mine.exists() and not dead.exists()


def test_bad_urls_become_error_rows_and_good_ones_succeed(tmp_path, server, media, two_clips):
    """A URL list through `run_curate` (2 workers): every bad answer is an error row of stage 'download' with a
    readable reason, the good ones are curated, the host pacing holds, and a rerun fetches nothing again."""
    a, b = media["a.mp4"], media["b.mp4"]
    routes = {
        "good_a": (f"/data/{_md5(a)}.mp4", Route(a)),
        "good_b": ("/media/b.mp4", Route(b, content_type="application/octet-stream")),
        "slow": ("/slow.mp4", Route(a, delay=1.5)),
        "missing": ("/missing.mp4", None),  # no route: 404
        "error": ("/error.mp4", Route(a, fail_first=99, fail_status=500)),
        "truncated": ("/truncated.mp4", Route(a[: len(a) // 2], declared_length=len(a))),
        "html": ("/html.mp4", Route(b"<!DOCTYPE html><html><title>Just a moment...</title>", content_type="text/html")),
        "html_as_video": ("/sneaky.mp4", Route(b"\n<html><body>Access denied</body></html>")),
        "md5": (f"/data/{_md5(b'not these bytes')}.mp4", Route(a)),
        "not_http": ("ftp://example.invalid/x.mp4", None),
    }
    urls = {}
    for name, (path, route) in routes.items():
        if route is not None:
            server.add(path, route)
        urls[name] = path if "://" in path else server.url(path)
    listing = tmp_path / "urls.txt"
    listing.write_text("# test list\n\n" + "\n".join(urls.values()) + "\n")
    download = DownloadConfig(timeout=0.3, retries=2, backoff=0.01, backoff_max=0.05, host_delay=0.1)
    config = CurateConfig(download=download, download_cache=str(tmp_path / "cache"))
    stats = run_curate([str(listing)], tmp_path / "out", config, workers=2)

    assert stats["sources"] == {"total": 10, "ok": 2, "failed": 8, "skipped_done": 0}
    assert stats["failed_by_stage"] == {"download": 8}
    errors = {r["source"]: r for r in pq.read_table(tmp_path / "out" / "errors.parquet").to_pylist()}
    reason = {name: errors[url]["reason"] for name, url in urls.items() if url in errors}
    assert set(reason) == set(urls) - {"good_a", "good_b"}
    assert "timed out" in reason["slow"] and "gave up after 3 attempts" in reason["slow"]
    assert reason["missing"] == "HTTP 404 Not Found"
    assert reason["error"].startswith("HTTP 500") and "gave up after 3 attempts" in reason["error"]
    assert "truncated body" in reason["truncated"]
    assert "text/html" in reason["html"]
    assert "HTML" in reason["html_as_video"]
    assert "MD5 mismatch" in reason["md5"]
    assert "not an http(s) URL" in reason["not_http"]
    assert server.count("/missing.mp4") == 1 and server.count("/error.mp4") == 3 and server.count("/slow.mp4") == 3
    assert server.count("/truncated.mp4") == 3 and server.count("/html.mp4") == 1

    rows = ds.dataset(tmp_path / "out" / "metadata").to_table().to_pylist()
    by_url = {}
    for row in rows:
        by_url.setdefault(row["url_link"], []).append(row)
    assert set(by_url) == {urls["good_a"], urls["good_b"]}
    assert len(by_url[urls["good_a"]]) == len(two_clips[0].shot_ranges)
    assert sorted((r["start_frame"], r["end_frame"]) for r in by_url[urls["good_b"]]) == list(two_clips[1].shot_ranges)
    assert all(r["source"] == r["url_link"] and r["file_ext"] == "mp4" for r in rows)
    assert {r["video_id"].rsplit("-", 1)[0] for r in rows} == {_md5(a), "b"}
    assert "download" in stats["stage_seconds"]

    starts = HostGate(tmp_path / "cache" / "_hosts", download.host_delay, 1).starts(server.url("/"))
    assert len(starts) == len(server.times())
    gaps = [y - x for x, y in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= download.host_delay, gaps

    before = len(server.log)
    again = run_curate([str(listing)], tmp_path / "out2", config, workers=1)
    assert again["sources"]["ok"] == 2
    fetched_again = [p for p, _ in server.log[before:]]
    assert routes["good_a"][0] not in fetched_again and routes["good_b"][0] not in fetched_again
    assert not list(Path(tmp_path / "cache").rglob("*.part"))
