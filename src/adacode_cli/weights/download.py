"""HTTP downloads into the weights cache: streamed, resumable, retried, size-capped, with progress.

The body goes to a `.part` file that survives failures, so every retry (and the next run) resumes
it with an HTTP Range request; servers that ignore Range and answer 200 simply start it over.
Dropped connections, timeouts, 408/429 and 5xx answers are retried with exponential backoff, one
line on stderr per retry saying why. What waiting cannot fix fails at once with one line: a host
name that does not resolve, a refused connection (nothing listens there), other 4xx, TLS errors,
a body over the size cap. A stop request (`should_stop`, polled per chunk and while waiting to
retry) raises KeyboardInterrupt and keeps the `.part` file for the next run to resume.
"""

from __future__ import annotations

import math
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from adacode_cli.errors import WeightsError
from adacode_cli.weights.registry import MIRROR_ENV

BACKOFF_ENV = "ADACODE_RETRY_BACKOFF"
MAX_BYTES_ENV = "ADACODE_MAX_DOWNLOAD_BYTES"
DEFAULT_MAX_BYTES = 2 * 10**9
_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class DownloadSettings:
    """Timeouts in seconds; `backoff` is the first retry's delay, doubled for each later one."""

    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    attempts: int = 5
    backoff: float = 2.0
    max_bytes: int = DEFAULT_MAX_BYTES
    chunk_size: int = 1 << 16

    @classmethod
    def from_env(cls) -> DownloadSettings:
        """Defaults, with ADACODE_RETRY_BACKOFF and ADACODE_MAX_DOWNLOAD_BYTES applied."""
        return cls(
            backoff=_env_number(BACKOFF_ENV, cls.backoff),
            max_bytes=int(_env_number(MAX_BYTES_ENV, cls.max_bytes)),
        )


class _Transient(Exception):
    """A failure worth another attempt: dropped connection, timeout, 5xx."""


StopCheck = Callable[[], bool] | None


def notify(message: str) -> None:
    """One line on stderr (notices and warnings; stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def download(
    url: str,
    partial: Path,
    *,
    expected_size: int | None,
    settings: DownloadSettings,
    label: str,
    show_progress: bool,
    should_stop: StopCheck = None,
) -> None:
    """Fetch `url` into `partial`, resuming what is already there; return once the body is complete.

    The caller verifies the checksum; a body larger than `expected_size` (when known) or than
    `settings.max_bytes` is refused and the partial file deleted.
    """
    limit = settings.max_bytes if expected_size is None else min(expected_size, settings.max_bytes)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not (show_progress and sys.stderr.isatty()),
    )
    failure: _Transient | None = None
    with requests.Session() as session, progress:  # a Session keeps trust_env: proxies apply
        # Hidden until the server answers: no frozen "0/? bytes" bar while we cannot connect.
        task = progress.add_task(label, total=expected_size, visible=False)
        for attempt in range(1, settings.attempts + 1):
            try:
                _attempt(session, url,
                         _Transfer(partial, limit, settings, progress, task, should_stop))
                return
            except _Transient as error:
                failure = error
            if attempt < settings.attempts:
                delay = settings.backoff * 2 ** (attempt - 1)
                progress.console.print(
                    f"{label}: {failure} (attempt {attempt} of {settings.attempts}); "
                    f"retrying in {delay:g} s",
                    markup=False, highlight=False, soft_wrap=True,
                )
                _wait(delay, should_stop)
    raise WeightsError(
        f"could not download {url}: {failure} (gave up after {settings.attempts} attempts); "
        f"check the network and proxy settings, or set {MIRROR_ENV}"
    )


def _wait(seconds: float, should_stop: StopCheck) -> None:
    """Sleep before a retry, in short steps so a stop request is seen within 0.1 s."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _stop_if_asked(should_stop)
        time.sleep(min(left, 0.1))
    _stop_if_asked(should_stop)


def _stop_if_asked(should_stop: StopCheck) -> None:
    if should_stop is not None and should_stop():
        raise KeyboardInterrupt


@dataclass(frozen=True)
class _Transfer:
    """Where one download goes and how it is bounded, shown and stopped: the same for every
    attempt of it."""

    partial: Path
    limit: int
    settings: DownloadSettings
    progress: Progress
    task: TaskID
    should_stop: StopCheck


def _attempt(session: requests.Session, url: str, transfer: _Transfer) -> None:
    partial, limit, settings = transfer.partial, transfer.limit, transfer.settings
    _stop_if_asked(transfer.should_stop)
    offset = partial.stat().st_size if partial.exists() else 0
    if offset > limit:
        partial.unlink()
        offset = 0
    headers = {"Accept-Encoding": "identity"}  # Range offsets count bytes on the wire
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = session.get(
            url,
            headers=headers,
            stream=True,
            timeout=(settings.connect_timeout, settings.read_timeout),
        )
    except requests.exceptions.SSLError as error:
        raise WeightsError(f"TLS error downloading {url}: {_reason(error)}") from error
    except _RETRYABLE as error:
        raise _connection_failure(url, error) from error
    except requests.RequestException as error:
        raise WeightsError(f"cannot download {url}: {_reason(error)}") from error
    with response:
        if response.status_code == 416 and offset:
            if _complete_total(response) == offset:
                return
            partial.unlink()
            raise _Transient("the server could not resume the download; starting it over")
        start, total = _accepted(url, response, offset, partial)
        if total is not None and total > limit:
            partial.unlink(missing_ok=True)
            raise _too_large(url, limit)
        transfer.progress.update(transfer.task, total=total, completed=start, visible=True)
        try:
            _stream(response, start, transfer)
        except WeightsError:
            partial.unlink(missing_ok=True)
            raise
    size = partial.stat().st_size
    if total is not None and size != total:
        raise _Transient(f"connection closed after {size} of {total} bytes")


def _accepted(
    url: str, response: requests.Response, offset: int, partial: Path
) -> tuple[int, int | None]:
    """Check the answer; return where its body starts in the file and the file's total size."""
    status = response.status_code
    if status == 404:
        raise WeightsError(
            f"{url} was not found (HTTP 404); set {MIRROR_ENV} to a server that has "
            f"{urlsplit(url).path.rsplit('/', 1)[-1]}"
        )
    if status >= 500 or status in (408, 429):
        raise _Transient(f"HTTP {status} {response.reason}")
    if status not in (200, 206):
        raise WeightsError(f"{url} answered HTTP {status} {response.reason}")
    if urlsplit(url).scheme == "https" and urlsplit(response.url).scheme != "https":
        raise WeightsError(f"{url} redirected to plain http ({response.url}); refusing it")
    if status == 200:  # a fresh body: the server ignored Range or none was sent
        length = response.headers.get("Content-Length")
        return 0, int(length) if length and length.isdigit() else None
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None or int(match.group(1)) != offset:
        partial.unlink(missing_ok=True)
        raise _Transient("the server resumed at the wrong offset; starting over")
    return offset, None if match.group(3) == "*" else int(match.group(3))


def _stream(response: requests.Response, start: int, transfer: _Transfer) -> None:
    written = start
    with open(transfer.partial, "ab" if start else "wb") as out:
        try:
            for chunk in response.iter_content(transfer.settings.chunk_size):
                _stop_if_asked(transfer.should_stop)
                written += len(chunk)
                if written > transfer.limit:
                    raise _too_large(response.url, transfer.limit)
                out.write(chunk)
                transfer.progress.advance(transfer.task, len(chunk))
        except _RETRYABLE as error:
            raise _Transient(_reason(error)) from error
        except requests.RequestException as error:
            raise WeightsError(f"cannot download {response.url}: {_reason(error)}") from error


def _connection_failure(url: str, error: requests.RequestException) -> Exception:
    """A failure to connect: fatal where the host does not resolve or refuses, else retried."""
    causes = list(_causes(error))
    host = urlsplit(url).hostname or url
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return WeightsError(
            f"cannot download {url}: the host name {host!r} does not resolve "
            f"({_reason(error)}); check the network connection and DNS, or set {MIRROR_ENV}"
        )
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return WeightsError(
            f"cannot download {url}: {_reason(error)} by {host} (no server listens there); "
            f"check the address, or set {MIRROR_ENV} to a running server"
        )
    return _Transient(_reason(error))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """Every exception behind `error`: requests wraps urllib3, which wraps the socket error."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None),
                    *current.args]


def _complete_total(response: requests.Response) -> int | None:
    """The total size a 416 answer reports (`Content-Range: bytes */N`), if any."""
    match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _too_large(url: str, limit: int) -> WeightsError:
    return WeightsError(
        f"refusing {url}: larger than {limit} bytes (the registry size, or {MAX_BYTES_ENV}, "
        f"caps downloads)"
    )


def _reason(error: BaseException) -> str:
    """A short one-line reason: requests' messages nest whole reprs of urllib3 objects."""
    text = str(error)
    errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if errno:
        return errno.group(0).strip()
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection broken mid-download"
    lines = text.splitlines()
    return (lines[0][:200] if lines else "") or type(error).__name__


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise WeightsError(f"{name} must be a non-negative number, got {raw!r}")
    return value
