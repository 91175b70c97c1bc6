"""The weights registry (`weights.json`): which models exist, where they live, how to check them.

There is one file, `weights.json` at the repository root; the wheel carries it inside the package
(hatch `force-include`), and a source checkout reads the root file. `ADACODE_REGISTRY=<path>`
replaces it (tests and private forks point it at their own file). Every entry is validated on load
so a bad registry fails with one clear line instead of a confusing download error later. Adding a
model is one entry; `"default": true` makes it what a restoration command uses for its task and
scale when `--weights` is not given (at most one default per task and scale).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adacode_cli.errors import WeightsError

SCHEMA_VERSION = 1
REGISTRY_ENV = "ADACODE_REGISTRY"
MIRROR_ENV = "ADACODE_MIRROR"
KINDS = ("adacode", "discriminator", "loss-network")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA256_PREFIX = re.compile(r"[0-9a-f]{8,63}")
_OPTIONAL = frozenset({"note", "default", "discriminator"})
_FIELDS = frozenset(
    {"name", "kind", "task", "scale", "url", "sha256", "sha256_prefix", "size", "license",
     "source", *_OPTIONAL}
)
# In the wheel the registry sits in the package; in a source checkout, at the repository root.
_CHECKOUT_REGISTRY = Path(__file__).resolve().parents[3] / "weights.json"


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable model: `sha256`/`sha256_prefix` are None where nothing was published."""

    name: str
    kind: str
    task: str
    scale: int | None
    url: str
    sha256: str | None
    sha256_prefix: str | None
    size: int | None
    license: str
    source: str
    note: str | None = None
    default: bool = False
    discriminator: str | None = None  # the registry name of its GAN discriminator, if published

    @property
    def file_name(self) -> str:
        """The file name of the official URL: what a mirror must serve."""
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Registry:
    """All entries, by name, in file order."""

    entries: dict[str, WeightsEntry]

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> WeightsEntry:
        """The entry called `name`; an unknown name is a user error that lists the valid ones."""
        validate_name(name)
        try:
            return self.entries[name]
        except KeyError:
            raise WeightsError(
                f"unknown weights {name!r}: valid names are {', '.join(self.names)}"
            ) from None

    def default_for(self, task: str, scale: int) -> WeightsEntry | None:
        """The AdaCode network marked `default` for `task` at `scale`, if the registry has one."""
        return next(
            (e for e in self.entries.values() if e.default and (e.task, e.scale) == (task, scale)),
            None,
        )


def validate_name(name: str) -> str:
    """Reject anything but [a-z0-9-]: names become file names in the cache, so no path tricks."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise WeightsError(
            f"invalid weights name {name!r}: use lowercase letters, digits and '-' only"
        )
    return name


def download_url(entry: WeightsEntry) -> str:
    """The official URL, or `<ADACODE_MIRROR>/<file name of the official URL>` when a mirror is set.

    Mirrors may use plain http (an air-gapped LAN server); the caller warns about it.
    """
    base = os.environ.get(MIRROR_ENV, "").strip()
    if not base:
        return entry.url
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WeightsError(f"{MIRROR_ENV} must be an http(s) URL, got {base!r}")
    return f"{base.rstrip('/')}/{entry.file_name}"


def registry_path() -> Path | None:
    """The registry file named by ADACODE_REGISTRY, or None for the packaged one."""
    override = os.environ.get(REGISTRY_ENV)
    return Path(override).expanduser() if override else None


def load_registry(path: Path | None = None) -> Registry:
    """Read and validate the registry: `path`, else ADACODE_REGISTRY, else the packaged file."""
    path = path or registry_path()
    try:
        if path is None:
            label = "the packaged weights.json"
            packaged = resources.files("adacode_cli") / "weights.json"
            source = packaged if packaged.is_file() else _CHECKOUT_REGISTRY
            text = source.read_text(encoding="utf-8")
        else:
            label = str(path)
            text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as error:
        raise WeightsError(f"cannot read the weights registry {label}: {error}") from error
    return _parse(data, label)


def _parse(data: Any, label: str) -> Registry:
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise WeightsError(
            f"weights registry {label}: expected schema_version {SCHEMA_VERSION}"
        )
    models = data.get("models")
    if not isinstance(models, list):
        raise WeightsError(f"weights registry {label}: 'models' must be a list")
    entries: dict[str, WeightsEntry] = {}
    for raw in models:
        entry = _parse_entry(raw, label)
        if entry.name in entries:
            raise WeightsError(f"weights registry {label}: duplicate name {entry.name!r}")
        entries[entry.name] = entry
    registry = Registry(entries)
    for entry in entries.values():
        paired = entries.get(entry.discriminator or "")
        if entry.discriminator is not None and (paired is None or paired.kind != "discriminator"):
            raise WeightsError(
                f"weights registry {label}: {entry.name!r} names {entry.discriminator!r} as its "
                "discriminator, which is not a discriminator entry of the registry"
            )
        chosen = registry.default_for(entry.task, entry.scale) if entry.default else entry
        if chosen is not entry:
            raise WeightsError(
                f"weights registry {label}: {chosen.name!r} and {entry.name!r} are both the "
                f"default for {entry.task} x{entry.scale}; mark only one `\"default\": true`"
            )
    return registry


def _parse_entry(raw: Any, label: str) -> WeightsEntry:
    if not isinstance(raw, dict):
        raise WeightsError(f"weights registry {label}: every model must be an object")
    where = f"weights registry {label}, model {raw.get('name')!r}"
    unknown = set(raw) - _FIELDS
    missing = _FIELDS - _OPTIONAL - set(raw)
    if unknown or missing:
        raise WeightsError(
            f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}"
        )
    entry = WeightsEntry(**raw)
    checks = [
        (isinstance(entry.name, str) and NAME_PATTERN.fullmatch(entry.name), "name"),
        (entry.kind in KINDS, f"kind (one of {', '.join(KINDS)})"),
        (isinstance(entry.task, str) and bool(entry.task), "task"),
        (entry.scale is None or _positive_int(entry.scale), "scale"),
        (_https_url(entry.url), "url (must be https)"),
        (entry.sha256 is None or _hex(entry.sha256, _SHA256), "sha256 (64 lowercase hex)"),
        (entry.sha256_prefix is None or _hex(entry.sha256_prefix, _SHA256_PREFIX),
         "sha256_prefix (lowercase hex)"),
        (entry.size is None or _positive_int(entry.size), "size (bytes)"),
        (isinstance(entry.license, str) and bool(entry.license), "license"),
        (isinstance(entry.source, str) and bool(entry.source), "source"),
        (entry.note is None or isinstance(entry.note, str), "note"),
        (entry.default is False or (entry.default is True and entry.kind == "adacode"
                                    and entry.scale is not None),
         "default (true only for an AdaCode network with a scale)"),
    ]
    for ok, field in checks:
        if not ok:
            raise WeightsError(f"{where}: invalid {field}")
    return entry


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _hex(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and bool(pattern.fullmatch(value))


def _https_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc) and not parts.path.endswith("/")
