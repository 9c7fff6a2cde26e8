"""Fetching remote sources: a polite, verifying HTTP downloader with a local cache, and the `download` stage.

Standard library only (`urllib`): everything needed is there (timeouts, streamed reads, status and headers) and
the per-host pacing below rules out the connection pooling a client library would add. For each URL:

* the URL must be http(s); the remote file name is sanitised before it names anything on disk, and the cache
  path is built from a hash of the URL (`CACHE/ab/abcdef.../<safe name>`), so no remote name can traverse;
* a cache hit (the final file exists: it is renamed into place only after every check passed) costs no request;
* requests to one host are paced and serialised across threads and processes of this machine: a lock file per
  host (`CACHE/_hosts/`) holds the last request's start time, and the next request starts no sooner than
  `host_delay` seconds after it (Sakugabooru asks for >= 0.35 s); `connections_per_host` slots (lock files)
  bound the concurrent transfers to one host (default 1, as Sakuga's own downloader);
* the body streams to a temporary file in the same folder, then is renamed: a kill leaves at most a `.part`
  file, which a later run removes (only those of dead processes on this machine);
* checks: HTTP status, Content-Type (text/HTML, JSON and XML bodies are refused even with status 200, and so is
  a body that starts like an HTML page whatever its type), a size cap (declared length and bytes received),
  the declared length against the bytes received (a truncated body), and the MD5 of the bytes against the file
  name when that name is 32 hex digits (Sakugabooru serves `data/<md5>.<ext>`);
* retries with exponential backoff (and a little jitter) on 5xx, 408 and 429 (honouring `Retry-After` up to
  `backoff_max`), timeouts, connection errors and truncated bodies; never on other 4xx or failed checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from toonlab.curate.records import VideoRef
from toonlab.curate.stage import Resources, StageError

USER_AGENT = "toonlab-curate/0.1 (research dataset curation; polite: one connection per host, paced)"
_MD5_NAME = re.compile(r"^[0-9a-fA-F]{32}$")
_REFUSED_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<!--", b"<?xml")
_MACHINE = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname()) or "host"


def _part(folder: Path, name: str) -> Path:
    """A temporary file for `name` in `folder`: `.<name>.<machine>.<pid>.<random>.part` (see remove_stale_parts)."""
    return folder / f".{name}.{_MACHINE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"


@dataclass(frozen=True)
class DownloadConfig:
    timeout: float = 30.0  # seconds to connect and between received bytes
    max_seconds: float = 900.0  # one attempt's whole transfer
    retries: int = 3  # attempts after the first, for retryable failures only
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    backoff_max: float = 60.0
    max_bytes: int = 1 << 30  # size cap per file
    host_delay: float = 0.35  # seconds between the starts of two requests to one host (>= 0.35 for Sakugabooru)
    connections_per_host: int = 1
    chunk: int = 1 << 16
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.max_seconds <= 0:
            raise ValueError("download timeouts must be > 0")
        if self.retries < 0:
            raise ValueError(f"download retries must be >= 0, got {self.retries}")
        if self.host_delay < 0:
            raise ValueError(f"host delay must be >= 0, got {self.host_delay}")
        if self.connections_per_host < 1:
            raise ValueError(f"connections per host must be >= 1, got {self.connections_per_host}")
        if self.max_bytes < 1:
            raise ValueError(f"download size cap must be >= 1 byte, got {self.max_bytes}")


class DownloadError(RuntimeError):
    """A URL could not be fetched; `reason` is a sentence, `retryable` says whether trying again may help."""

    def __init__(self, reason: str, retryable: bool = False, status: int | None = None, wait: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.wait = wait  # server-requested delay (Retry-After), seconds


@dataclass(frozen=True)
class Fetched:
    url: str
    path: Path
    size: int
    cached: bool  # True when the cache already held it (no request made)
    attempts: int


def safe_name(name: str, default: str = "download") -> str:
    """A remote file name made safe to use as one path component: ASCII letters, digits, `._-` only, no leading
    dot, at most 100 characters (the extension kept), never `.` or `..`."""
    name = urllib.parse.unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")
    stem, dot, ext = name.rpartition(".")
    if dot and len(ext) <= 10 and stem:
        name = f"{stem[: 99 - len(ext)]}.{ext}"
    else:
        name = name[:100]
    return name if name.strip("._") else default


def url_file_name(url: str) -> str:
    return safe_name(urllib.parse.urlsplit(url).path)


def expected_md5(url: str) -> str | None:
    """The MD5 a URL promises by naming its file `<32 hex>.<ext>` (Sakugabooru's `data/<md5>.<ext>`)."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1]
    stem = name.split(".", 1)[0]
    return stem.lower() if _MD5_NAME.match(stem) else None


def _host_key(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname or 'none'}_{parts.port or parts.scheme}")


class HostGate:
    """Per-host pacing and connection slots shared by every thread and process of this machine (flock on lock
    files; a lock is tied to its open file, so threads of one process exclude each other too)."""

    def __init__(self, folder: Path, delay: float, slots: int) -> None:
        self.folder = folder
        self.delay = delay
        self.slots = slots

    @contextlib.contextmanager
    def request(self, url: str) -> Iterator[None]:
        """Hold one of the host's connection slots for the request, starting it only when the host's pace
        allows."""
        self.folder.mkdir(parents=True, exist_ok=True)
        host = _host_key(url)
        with self._slot(host):
            self._pace(host)
            yield

    @contextlib.contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        handles = [open(self.folder / f"{host}.slot{i}", "a+b") for i in range(self.slots)]  # noqa: SIM115
        held = None
        try:
            for fh in handles:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = fh
                    break
                except BlockingIOError:
                    continue
            if held is None:  # all busy: wait for one (each transfer is bounded by its timeouts)
                held = handles[(os.getpid() + id(handles)) % self.slots]
                fcntl.flock(held, fcntl.LOCK_EX)
            yield
        finally:
            if held is not None:
                fcntl.flock(held, fcntl.LOCK_UN)
            for fh in handles:
                fh.close()

    def _pace(self, host: str) -> None:
        with open(self.folder / f"{host}.pace", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                try:
                    last = float(fh.read().strip() or 0.0)
                except ValueError:
                    last = 0.0
                wait = last + self.delay - time.time()
                if wait > 0:
                    time.sleep(wait)
                start = repr(time.time())
                fh.seek(0)
                fh.truncate()
                fh.write(start)
                fh.flush()
                with open(self.folder / f"{host}.starts", "a") as log:  # audit trail of the pace kept
                    log.write(start + "\n")
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def starts(self, url: str) -> list[float]:
        """Start times of every request made to the host of `url` through this gate's folder, in order."""
        log = self.folder / f"{_host_key(url)}.starts"
        return [float(line) for line in log.read_text().split()] if log.exists() else []


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s) (urllib would also follow ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-http(s) URL refused: {newurl}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Downloader:
    """Fetch URLs into `cache_dir` (see the module docstring for the rules)."""

    def __init__(self, config: DownloadConfig, cache_dir: Path) -> None:
        self.config = config
        self.cache_dir = Path(cache_dir)
        self.gate = HostGate(self.cache_dir / "_hosts", config.host_delay, config.connections_per_host)
        self._opener = urllib.request.build_opener(_HttpOnlyRedirects)

    def cache_path(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self.cache_dir / key[:2] / key / url_file_name(url)

    def fetch(self, url: str) -> Fetched:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("http", "https") or any(c.isspace() for c in url):
            raise DownloadError(f"not an http(s) URL: {url[:200]!r}")
        final = self.cache_path(url)
        if final.is_file():
            return Fetched(url, final, final.stat().st_size, cached=True, attempts=0)
        final.parent.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        attempt = 0
        while True:
            attempt += 1
            try:
                size = self._attempt(url, final)
                return Fetched(url, final, size, cached=False, attempts=attempt)
            except DownloadError as exc:
                if not exc.retryable or attempt > cfg.retries:
                    tries = f" (gave up after {attempt} attempts)" if attempt > 1 else ""
                    raise DownloadError(exc.reason + tries, exc.retryable, exc.status) from None
                pause = min(cfg.backoff_max, cfg.backoff * 2 ** (attempt - 1)) * (1 + 0.25 * random.random())
                time.sleep(max(pause, min(exc.wait, cfg.backoff_max)))

    def _attempt(self, url: str, final: Path) -> int:
        cfg = self.config
        request = urllib.request.Request(
            url,
            headers={
                "User-Agent": cfg.user_agent,
                "Accept": "video/*, image/gif, application/octet-stream;q=0.9, */*;q=0.1",
            },
        )
        tmp = _part(final.parent, final.name)
        try:
            with self.gate.request(url):
                started = time.monotonic()
                try:
                    response = self._opener.open(request, timeout=cfg.timeout)
                except urllib.error.HTTPError as exc:
                    exc.close()
                    raise _status_error(exc.code, exc.reason, exc.headers) from None
                with response:
                    size = self._stream(url, response, tmp, started)
            os.replace(tmp, final)
            return size
        except DownloadError:
            raise
        except TimeoutError:
            raise DownloadError(f"timed out: no data for {cfg.timeout:g} s", retryable=True) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise DownloadError(f"timed out after {cfg.timeout:g} s connecting", retryable=True) from None
            raise DownloadError(f"connection failed: {exc.reason}", retryable=True) from None
        except ValueError as exc:  # http.client.InvalidURL and friends
            raise DownloadError(f"invalid URL: {exc}") from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise DownloadError(f"connection broken: {type(exc).__name__}: {exc}", retryable=True) from None
        except OSError as exc:
            raise DownloadError(f"I/O error: {exc.strerror or exc}", retryable=True) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _stream(self, url: str, response, tmp: Path, started: float) -> int:
        cfg = self.config
        status = getattr(response, "status", 200)
        if status != 200:  # 2xx other than 200 (204 no content, 206 partial) is not the whole file
            raise _status_error(status, getattr(response, "reason", ""), response.headers)
        kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind.startswith(_REFUSED_TYPES):
            raise DownloadError(f"HTTP 200 but the body is {kind}, not media (an error or challenge page?)")
        declared = response.headers.get("Content-Length")
        declared = int(declared) if declared and declared.isdigit() else None
        if declared is not None and declared > cfg.max_bytes:
            raise DownloadError(f"too large: {declared} bytes declared, the cap is {cfg.max_bytes}")
        md5_wanted = expected_md5(url)
        md5 = hashlib.md5(usedforsecurity=False) if md5_wanted else None
        received = 0
        with open(tmp, "wb") as fh:
            while True:
                block = response.read(cfg.chunk)
                if not block:
                    break
                if received == 0 and block.lstrip()[:16].lower().startswith(_HTML_STARTS):
                    raise DownloadError(f"HTTP 200 but the body is an HTML/XML page (Content-Type {kind or 'none'})")
                received += len(block)
                if received > cfg.max_bytes:
                    raise DownloadError(f"too large: more than {cfg.max_bytes} bytes received (the cap)")
                if md5 is not None:
                    md5.update(block)
                fh.write(block)
                if time.monotonic() - started > cfg.max_seconds:
                    raise DownloadError(f"transfer took longer than {cfg.max_seconds:g} s", retryable=True)
        if declared is not None and received != declared:
            raise DownloadError(f"truncated body: received {received} of {declared} bytes", retryable=True)
        if received == 0:
            raise DownloadError("empty body (0 bytes)", retryable=True)
        if md5 is not None and md5.hexdigest() != md5_wanted:
            raise DownloadError(f"MD5 mismatch: the file name promises {md5_wanted}, the bytes are {md5.hexdigest()}")
        meta = {"url": url, "bytes": received, "content_type": kind, "md5_checked": bool(md5), "time": time.time()}
        meta_tmp = _part(tmp.parent, "meta.json")
        try:
            meta_tmp.write_text(json.dumps(meta))
            os.replace(meta_tmp, tmp.parent / "meta.json")
        finally:
            meta_tmp.unlink(missing_ok=True)
        return received


def _status_error(code: int, reason: str, headers) -> DownloadError:
    text = f"HTTP {code} {reason}".strip()
    retryable = code >= 500 or code in (408, 429)
    wait = 0.0
    if retryable and headers is not None:
        value = headers.get("Retry-After", "")
        wait = float(value) if value.strip().isdigit() else 0.0
    return DownloadError(text, retryable=retryable, status=code, wait=wait)


def remove_stale_parts(cache_dir: Path) -> int:
    """Delete `.part` files left by dead processes of this machine (a killed run); returns how many."""
    removed = 0
    if not Path(cache_dir).is_dir():
        return 0
    for path in Path(cache_dir).glob("??/*/.*.part"):
        fields = path.name.rsplit(".", 4)  # .<name>.<machine>.<pid>.<random>.part
        if len(fields) != 5 or fields[1] != _MACHINE or not fields[2].isdigit():
            continue
        if not _alive(int(fields[2])):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FetchStage:
    """Pipeline stage 0: a remote source is downloaded into the cache and becomes a local one; a local source
    passes through untouched. A failed download raises `StageError("download", ...)`, an error row."""

    name = "download"
    resources = Resources(cpus=0.0, network=True)  # waits on the network; hashing and writing cost little CPU

    def __init__(self, config: DownloadConfig, cache_dir: Path) -> None:
        self.config = config
        self.cache_dir = Path(cache_dir)
        self._downloader: Downloader | None = None

    def setup(self) -> None:
        self._downloader = Downloader(self.config, self.cache_dir)
        remove_stale_parts(self.cache_dir)

    def process(self, ref: VideoRef) -> VideoRef:
        if ref.url is None:
            return ref
        if self._downloader is None:
            self.setup()
        try:
            fetched = self._downloader.fetch(ref.url)
        except DownloadError as exc:
            raise StageError("download", exc.reason) from exc
        return replace(ref, path=fetched.path)
