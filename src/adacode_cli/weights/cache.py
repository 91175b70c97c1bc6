"""The weights cache: where each model lives, its metadata record, verification and removal.

Layout, under `<cache root>/weights/`: `NAME.safetensors` (what loads read), `NAME.json` (the
record: source URL, both hashes, date, tool version, and the size and times of the safetensors
file when it last matched its hash), `NAME.part` (an interrupted download, kept so the next
attempt resumes it), `NAME.pth` (a verified download whose conversion was interrupted, kept so
the next attempt converts it without downloading again) and `NAME.lock` (the inter-process lock).
A model counts as cached only when both its safetensors file and its record exist.

Every use of a cached file checks it against its record: the file is hashed again only when its
size or times changed since the last check (hashing 140 MB costs a fraction of a second, a stat
nothing), so a damaged file is never loaded and an unchanged one costs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import platformdirs

from adacode_cli.atomic import TEMP_PREFIX, atomic_write_text
from adacode_cli.errors import WeightsError
from adacode_cli.weights.lock import writers_lock
from adacode_cli.weights.registry import NAME_PATTERN, validate_name

HOME_ENV = "ADACODE_HOME"
RECORD_VERSION = 1
CHECKSUM_KINDS = ("sha256", "sha256-prefix", "none")
_FILE_SUFFIXES = (".safetensors", ".json", ".part", ".pth", ".lock")
_OPTIONAL_FIELDS = frozenset({"verified_stamp"})


def cache_root(cache_dir: Path | None = None) -> Path:
    """`cache_dir` if given, else ADACODE_HOME, else the platform's user cache folder."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_cache_dir("adacode"))


@dataclass(frozen=True)
class CachePaths:
    """Every file the cache keeps for one model."""

    folder: Path
    name: str

    @classmethod
    def for_model(cls, name: str, cache_dir: Path | None = None) -> CachePaths:
        return cls(cache_root(cache_dir) / "weights", validate_name(name))

    # One named property per file of a model: alike in shape by intent (the duplicate scan).
    @property
    def safetensors(self) -> Path:
        return self.folder / f"{self.name}.safetensors"

    @property
    def record(self) -> Path:
        return self.folder / f"{self.name}.json"

    @property
    def partial(self) -> Path:
        return self.folder / f"{self.name}.part"

    @property
    def download(self) -> Path:
        """A complete, verified download waiting for conversion (deleted right after)."""
        return self.folder / f"{self.name}.pth"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"


@dataclass(frozen=True)
class CacheRecord:
    """What we know about a cached model; `checksum` says what the download was checked against."""

    name: str
    kind: str
    url: str
    download_sha256: str
    download_size: int
    safetensors_sha256: str
    checksum: str
    downloaded_at: str
    tool_version: str
    record_version: int = RECORD_VERSION
    verified_stamp: list[int] | None = None  # file_stamp() of the safetensors when it last matched


def read_record(paths: CachePaths) -> CacheRecord | None:
    """The model's record, or None if there is none; a damaged record is a user error."""
    try:
        data = json.loads(paths.record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise _damaged(paths, error) from error
    names = {field.name for field in fields(CacheRecord)}
    if not isinstance(data, dict) or not names - _OPTIONAL_FIELDS <= set(data) <= names:
        raise _damaged(paths, "unexpected fields")
    record = CacheRecord(**data)
    if record.checksum not in CHECKSUM_KINDS or record.record_version != RECORD_VERSION:
        raise _damaged(paths, "unknown checksum kind or version")
    return record


def write_record(paths: CachePaths, record: CacheRecord) -> None:
    atomic_write_text(paths.record, json.dumps(asdict(record), indent=2) + "\n")


def is_cached(paths: CachePaths) -> bool:
    return paths.safetensors.is_file() and paths.record.is_file()


def cached_names(folder: Path, *, with_locks: bool = False) -> list[str]:
    """Names with files in the cache, in the registry or not (so orphans can be removed too);
    a name that has only its lock file counts with `with_locks` alone."""
    if not folder.is_dir():
        return []
    suffixes = _FILE_SUFFIXES if with_locks else _FILE_SUFFIXES[:-1]
    return sorted({
        path.stem
        for path in folder.iterdir()
        if path.suffix in suffixes and NAME_PATTERN.fullmatch(path.stem)
    })


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_stamp(path: Path) -> list[int]:
    """Size, modification and change time (ns): any write to the file changes one of them."""
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def verify_cached(paths: CachePaths, *, rehash: bool = True) -> CacheRecord:
    """Check the cached safetensors file against its record; a mismatch is a user error.

    With `rehash=False` (every use) the file is hashed only if it changed since it last matched;
    `weights verify` re-hashes always. A match refreshes the stamp in the record, when the cache
    is writable (a read-only cache is simply hashed again next time).
    """
    record = read_record(paths)
    if record is None or not paths.safetensors.is_file():
        raise WeightsError(
            f"{paths.name} is not cached: run `adacode weights download {paths.name}`"
        )
    stamp = file_stamp(paths.safetensors)
    if not rehash and record.verified_stamp == stamp:
        return record
    actual = sha256_file(paths.safetensors)
    if actual != record.safetensors_sha256:
        raise WeightsError(
            f"{paths.safetensors} is damaged (sha256 {actual}, expected "
            f"{record.safetensors_sha256}): repair it with `adacode weights download --force "
            f"{paths.name}` (or `adacode weights remove {paths.name}` and run again)"
        )
    if record.verified_stamp != stamp:
        record = replace(record, verified_stamp=stamp)
        with contextlib.suppress(OSError), writers_lock(paths.folder):
            write_record(paths, record)
    return record


def remove_cached(paths: CachePaths) -> bool:
    """Delete the model's files, its lock included (call with the lock held); True if any."""
    removed = False
    for path in (paths.safetensors, paths.record, paths.partial, paths.download):
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            pass
    with contextlib.suppress(OSError):  # Windows cannot delete a file held open
        paths.lock.unlink()
    return removed


def clean_leftovers(folder: Path) -> None:
    """Delete temporaries of killed runs if there are any and no writer is alive (a glob when
    there are none; nothing at all in a cache we may not write)."""
    if next(folder.glob(f"{TEMP_PREFIX}*"), None) is None:
        return
    with contextlib.suppress(OSError), writers_lock(folder, lambda: clean_temporaries(folder)):
        pass


def clean_temporaries(folder: Path) -> list[Path]:
    """Delete the atomic-write temporaries in `folder`; only with no other writer alive (see
    `lock.writers_lock`), so every one found was left by a killed process."""
    removed = []
    for path in folder.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def unwritable_cache(folder: Path, error: OSError) -> WeightsError:
    """The one-line error for a cache we cannot write to (read-only, full, not a folder...)."""
    reason = error.strerror or str(error)
    return WeightsError(
        f"cannot write to the weights cache {folder}: {reason}; "
        f"point --cache-dir or {HOME_ENV} at a writable folder"
    )


def _damaged(paths: CachePaths, reason: object) -> WeightsError:
    return WeightsError(
        f"cache record {paths.record} is damaged ({reason}): "
        f"run `adacode weights remove {paths.name}`"
    )
