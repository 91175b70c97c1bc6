"""Bring one registry model into the cache: download, verify, convert, record.

Runs under the model's lock (see api.py). Nothing reaches the cache unverified: a checksum
mismatch deletes the download, and a download kept from an interrupted conversion is hashed and
checked again before it is converted. Where no checksum was published, the first download's hash is
stored in the record and every later download of that model must match it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from adacode_cli import __version__
from adacode_cli.errors import CheckpointError, WeightsError
from adacode_cli.weights.cache import (
    CachePaths,
    CacheRecord,
    file_stamp,
    read_record,
    sha256_file,
    write_record,
)
from adacode_cli.weights.convert import convert_download
from adacode_cli.weights.download import DownloadSettings, download, notify
from adacode_cli.weights.registry import MIRROR_ENV, WeightsEntry, download_url


def install(
    entry: WeightsEntry,
    paths: CachePaths,
    *,
    quiet: bool,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Download `entry` into `paths`, verify it, convert it to safetensors and write its record.

    A verified download is kept as `NAME.pth` until its conversion succeeds, so a conversion
    stopped by Ctrl-C or a kill is redone from it next time instead of downloading again.
    """
    url = download_url(entry)
    previous = read_record(paths)
    source = _fetch(entry, paths, url, quiet=quiet, should_stop=should_stop)
    digest = sha256_file(source)
    checksum = _verify(entry, source, url, digest, previous)
    size = source.stat().st_size
    os.replace(source, paths.download)
    try:
        convert_download(entry.kind, paths.download, paths.safetensors, should_stop)
    except CheckpointError as error:
        paths.download.unlink(missing_ok=True)
        raise CheckpointError(f"{entry.name}: the file from {url} is unusable: {error}") from error
    record = CacheRecord(
        name=entry.name,
        kind=entry.kind,
        url=url,
        download_sha256=digest,
        download_size=size,
        safetensors_sha256=sha256_file(paths.safetensors),
        checksum=checksum,
        downloaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
        verified_stamp=file_stamp(paths.safetensors),
    )
    write_record(paths, record)
    paths.download.unlink()
    if checksum == "none" and previous is None:
        notify(
            f"note: {entry.name}: {entry.file_name} could not be verified against a published "
            f"checksum (none exists); its sha256 {digest} is stored and checked from now on"
        )


def _fetch(
    entry: WeightsEntry,
    paths: CachePaths,
    url: str,
    *,
    quiet: bool,
    should_stop: Callable[[], bool] | None,
) -> Path:
    """The complete download to verify: the one an interrupted run kept, else a fresh one."""
    if paths.download.is_file():
        if not quiet:
            notify(f"{entry.name}: converting the download kept from an interrupted run")
        return paths.download
    if urlsplit(url).scheme == "http":
        notify(f"warning: {MIRROR_ENV} uses plain http ({url}); only the checksum protects it")
    download(
        url,
        paths.partial,
        expected_size=entry.size,
        settings=DownloadSettings.from_env(),
        label=entry.name,
        show_progress=not quiet,
        should_stop=should_stop,
    )
    return paths.partial


def _verify(
    entry: WeightsEntry, source: Path, url: str, digest: str, previous: CacheRecord | None
) -> str:
    """Check the download against the best known hash; return what it was checked against."""
    if entry.sha256 is not None:
        kind, expected, ok = "sha256", entry.sha256, digest == entry.sha256
    elif entry.sha256_prefix is not None:
        kind, expected = "sha256-prefix", entry.sha256_prefix
        ok = digest.startswith(expected)
    elif previous is not None:
        kind, expected, ok = "none", previous.download_sha256, digest == previous.download_sha256
    else:
        return "none"
    if ok:
        return kind
    source.unlink()
    hint = (
        f"; the expected hash was stored at the first download, run "
        f"`adacode weights remove {entry.name}` if the file legitimately changed"
        if kind == "none"
        else ""
    )
    raise WeightsError(
        f"checksum mismatch for {entry.name} from {url}: expected sha256 {expected}, got "
        f"{digest}; the download was discarded{hint}"
    )
