"""The weights cache: where each model lives, its metadata record, verification and removal.

Layout, under `<cache root>/weights/`: `NAME.safetensors` (what loads read), `NAME.json` (the
record: source URL, both hashes, date, tool version), `NAME.part` (an interrupted download, kept so
the next attempt resumes it) and `NAME.lock` (the inter-process lock). A model counts as cached
only when both its safetensors file and its record exist.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import platformdirs

from adacode_cli.atomic import atomic_write_text
from adacode_cli.errors import WeightsError
from adacode_cli.weights.registry import NAME_PATTERN, validate_name

HOME_ENV = "ADACODE_HOME"
RECORD_VERSION = 1
CHECKSUM_KINDS = ("sha256", "sha256-prefix", "none")
_FILE_SUFFIXES = (".safetensors", ".json", ".part")


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


def read_record(paths: CachePaths) -> CacheRecord | None:
    """The model's record, or None if there is none; a damaged record is a user error."""
    try:
        data = json.loads(paths.record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise _damaged(paths, error) from error
    names = {field.name for field in fields(CacheRecord)}
    if not isinstance(data, dict) or set(data) != names:
        raise _damaged(paths, "unexpected fields")
    record = CacheRecord(**data)
    if record.checksum not in CHECKSUM_KINDS or record.record_version != RECORD_VERSION:
        raise _damaged(paths, "unknown checksum kind or version")
    return record


def write_record(paths: CachePaths, record: CacheRecord) -> None:
    atomic_write_text(paths.record, json.dumps(asdict(record), indent=2) + "\n")


def is_cached(paths: CachePaths) -> bool:
    return paths.safetensors.is_file() and paths.record.is_file()


def cached_names(folder: Path) -> list[str]:
    """Names with files in the cache, in the registry or not (so orphans can be removed too)."""
    if not folder.is_dir():
        return []
    return sorted({
        path.stem
        for path in folder.iterdir()
        if path.suffix in _FILE_SUFFIXES and NAME_PATTERN.fullmatch(path.stem)
    })


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_cached(paths: CachePaths) -> CacheRecord:
    """Re-hash the cached safetensors file against its record; a mismatch is a user error."""
    record = read_record(paths)
    if record is None or not paths.safetensors.is_file():
        raise WeightsError(
            f"{paths.name} is not cached: run `adacode weights download {paths.name}`"
        )
    actual = sha256_file(paths.safetensors)
    if actual != record.safetensors_sha256:
        raise WeightsError(
            f"{paths.safetensors} is damaged (sha256 {actual}, expected "
            f"{record.safetensors_sha256}): run `adacode weights remove {paths.name}` and "
            f"download it again"
        )
    return record


def remove_cached(paths: CachePaths) -> bool:
    """Delete the model's files (not its lock); True if there was anything to delete."""
    removed = False
    for path in (paths.safetensors, paths.record, paths.partial, paths.download):
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            pass
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
