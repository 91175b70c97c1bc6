"""What the other layers call: registry name or path in, a local weights file out.

`ensure_weights` makes a registry model available in the cache (downloading, verifying and
converting it once, under an inter-process lock); `resolve_weights` turns a command's
`--weights NAME|PATH` into a file, picking the task's default model when none is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from adacode_cli.errors import WeightsError
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.weights.cache import (
    CachePaths,
    clean_leftovers,
    clean_temporaries,
    is_cached,
    unwritable_cache,
    verify_cached,
)
from adacode_cli.weights.download import notify
from adacode_cli.weights.header import held_config
from adacode_cli.weights.install import install
from adacode_cli.weights.lock import exclusive_lock, writers_lock
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
    force: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """The cached `.safetensors` file of registry model `name`, fetched first if it is missing.

    A cached model is checked against its record (hashed again only if the file changed since
    its last check) and returned without taking the lock, so a read-only, pre-filled cache works.
    `force` fetches it again (a damaged file's repair). `quiet` hides the progress bar and
    informational lines. `should_stop` is polled during the download and the conversion; when
    it turns true they raise KeyboardInterrupt.
    """
    entry = load_registry().get(name)
    paths = CachePaths.for_model(entry.name, cache_dir)
    if not force and is_cached(paths):
        verify_cached(paths, rehash=False)
        clean_leftovers(paths.folder)
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
        with (
            exclusive_lock(paths.lock, on_wait=waiting),
            writers_lock(paths.folder, clean=lambda: clean_temporaries(paths.folder)),
        ):
            if force:  # the record stays: a re-download must still match its stored hash
                paths.safetensors.unlink(missing_ok=True)
            if not is_cached(paths):  # the process we waited for may have fetched it
                install(entry, paths, quiet=quiet, should_stop=should_stop)
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
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """The weights file for a restoration command's `--weights NAME|PATH`.

    Empty: the registry's `default` model for the task and scale (sr-x2, sr-x4, inpaint, recon).
    A registry name: that model from the cache (it must suit `task`/`scale` when they are given).
    An existing `.safetensors` or official `.pth` path: that path, for the caller to load.
    """
    registry = load_registry()
    if not spec:
        name = _default_name(registry, task, scale)
    elif spec in registry.entries:
        name = spec
        _check_fits(registry.entries[spec], registry, task, scale)
    else:
        path = Path(spec).expanduser()
        if path.suffix in WEIGHT_SUFFIXES and os.path.lexists(path):
            return path  # the loader refuses a folder or an unreadable file with one named line
        raise WeightsError(
            f"unknown weights {spec!r}: not a registry name ({', '.join(_restorers(registry))}) "
            f"nor an existing .safetensors or .pth file"
        )
    return ensure_weights(
        name, cache_dir=cache_dir, offline=offline, quiet=quiet, should_stop=should_stop
    )


def _restorers(registry: Registry) -> list[str]:
    return [entry.name for entry in registry.entries.values() if entry.kind == "adacode"]


def _default_name(registry: Registry, task: str | None, scale: int | None) -> str:
    """The registry's `default` for the task at `scale`; without a scale, the task's only one."""
    scales = {e.scale for e in registry.entries.values() if e.default and e.task == task}
    if scale is None and len(scales) == 1:
        scale = scales.pop()
    chosen = registry.default_for(task, scale) if task and scale is not None else None
    if chosen is not None:
        return chosen.name
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
        held = describe_model(entry.task, entry.scale, entry.kind)
        at_scale = f" x{scale}" if scale is not None else ""
        raise WeightsError(
            f"weights {entry.name!r} ({held}) do not fit {task}{at_scale}: `adacode {task}` "
            f"needs {describe_model(task, scale)}; choose one of "
            f"{', '.join(_restorers(registry))}"
        )


_TASK_WORDS = {
    "sr": "super-resolution",
    "inpaint": "inpainting",
    "recon": "stage-2 reconstruction",
    "vqgan": "stage-1 VQGAN",
}
_KIND_WORDS = {"discriminator": "discriminator", "loss-network": "loss network"}


def describe_model(task: str, scale: int | None, kind: str = "adacode") -> str:
    """'an inpainting model', 'a super-resolution x4 model', 'a discriminator': for messages."""
    if kind in _KIND_WORDS:
        words = _KIND_WORDS[kind]
    else:
        words = f"{_TASK_WORDS.get(task, task)} model"
        if task == "sr" and scale is not None:
            words = words.replace(" model", f" x{scale} model")
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def check_weights_file(path: Path, task: str, scale: int | None) -> AdaCodeConfig | None:
    """Before torch loads: `path` must be a weights file whose network suits `task` at `scale`
    (when its header cannot tell, None, `refuse_unfit_model` runs once the model is loaded).
    Returns the network's config."""
    held = held_config(path)
    if held is not None:
        refuse_unfit_model(path, held.task, held.scale, task, scale)
    return held


def refuse_unfit_model(
    path: Path, held_task: str, held_scale: int, task: str, scale: int | None
) -> None:
    """Refuse a weights file whose network is for another task or scale than the command's
    (a stage-1 VQGAN reconstructs its input too, so it suits `recon`)."""
    if task == "recon" and held_task == "vqgan":
        held_task = "recon"
    if held_task == task and scale in (None, held_scale):
        return
    raise WeightsError(
        f"{path} holds {describe_model(held_task, held_scale)}, but `adacode {task}` needs "
        f"{describe_model(task, scale)} (see `adacode weights list`, or `adacode info {path}`)"
    )
