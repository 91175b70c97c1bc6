"""What the other layers call: registry name or path in, a local weights file out.

`ensure_weights` makes a registry model available in the cache (downloading, verifying and
converting it once, under an inter-process lock); `resolve_weights` turns a command's
`--weights NAME|PATH` into a file, picking the task's default model when none is given.
"""

from __future__ import annotations

import os
from pathlib import Path

from adacode_cli.errors import WeightsError
from adacode_cli.weights.cache import CachePaths, is_cached, unwritable_cache
from adacode_cli.weights.download import notify
from adacode_cli.weights.install import install
from adacode_cli.weights.lock import exclusive_lock
from adacode_cli.weights.registry import MIRROR_ENV, Registry, WeightsEntry, load_registry

OFFLINE_ENV = "ADACODE_OFFLINE"
WEIGHT_SUFFIXES = (".safetensors", ".pth")
_TRUE = frozenset({"1", "true", "yes", "on"})


def is_offline(offline: bool | None = None) -> bool:
    """`offline` if given, else whether ADACODE_OFFLINE is set to 1/true/yes/on."""
    if offline is not None:
        return offline
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def ensure_weights(
    name: str,
    *,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    quiet: bool = False,
) -> Path:
    """The cached `.safetensors` file of registry model `name`, fetched first if it is missing.

    A cached model is returned without taking the lock or writing anything, so a read-only,
    pre-filled cache works. `quiet` hides the progress bar and informational lines.
    """
    entry = load_registry().get(name)
    paths = CachePaths.for_model(entry.name, cache_dir)
    if is_cached(paths):
        return paths.safetensors
    if is_offline(offline):
        raise WeightsError(
            f"{name} is not cached and offline mode is on ({OFFLINE_ENV} or --offline): run "
            f"`adacode weights download {name}` while online, or set {MIRROR_ENV} to a reachable "
            f"mirror"
        )

    def waiting() -> None:
        if not quiet:
            notify(f"waiting for another adacode process to finish downloading {name}")

    try:
        paths.folder.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(paths.lock, on_wait=waiting):
            if not is_cached(paths):  # the process we waited for may have fetched it
                install(entry, paths, quiet=quiet)
    except OSError as error:
        raise unwritable_cache(paths.folder, error) from error
    return paths.safetensors


def resolve_weights(
    spec: str | None,
    *,
    task: str | None = None,
    scale: int | None = None,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    quiet: bool = False,
) -> Path:
    """The weights file for a restoration command's `--weights NAME|PATH`.

    Empty: the task's default model (sr x2 -> sr-x2, sr x4 -> sr-x4, inpaint, recon). A registry
    name: that model from the cache (it must suit `task`/`scale` when they are given). An existing
    `.safetensors` or official `.pth` file: that path, for the caller to load.
    """
    registry = load_registry()
    if not spec:
        name = _default_name(registry, task, scale)
    elif spec in registry.entries:
        name = spec
        _check_fits(registry.entries[spec], registry, task, scale)
    else:
        path = Path(spec).expanduser()
        if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
            return path
        raise WeightsError(
            f"unknown weights {spec!r}: not a registry name ({', '.join(_restorers(registry))}) "
            f"nor an existing .safetensors or .pth file"
        )
    return ensure_weights(name, cache_dir=cache_dir, offline=offline, quiet=quiet)


def _restorers(registry: Registry) -> list[str]:
    return [entry.name for entry in registry.entries.values() if entry.kind == "adacode"]


def _default_name(registry: Registry, task: str | None, scale: int | None) -> str:
    candidates = [
        entry.name
        for entry in registry.entries.values()
        if entry.kind == "adacode" and entry.task == task and scale in (None, entry.scale)
    ]
    if len(candidates) == 1:
        return candidates[0]
    at_scale = f" at scale {scale}" if scale is not None else ""
    raise WeightsError(
        f"no single default weights for task {task!r}{at_scale}: choose one of "
        f"{', '.join(_restorers(registry))} with --weights"
    )


def _check_fits(
    entry: WeightsEntry, registry: Registry, task: str | None, scale: int | None
) -> None:
    """A restoration command (it passes `task`) needs an AdaCode network for its task and scale."""
    if task is None:
        return
    fits = entry.kind == "adacode" and entry.task == task and scale in (None, entry.scale)
    if not fits:
        at_scale = f" x{scale}" if scale is not None else ""
        raise WeightsError(
            f"weights {entry.name!r} ({entry.kind}, task {entry.task}, scale {entry.scale}) do "
            f"not fit {task}{at_scale}: choose one of {', '.join(_restorers(registry))}"
        )
