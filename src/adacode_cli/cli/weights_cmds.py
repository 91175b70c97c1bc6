"""`adacode weights ...`: list, download, locate, verify and remove pretrained weights.

Results go to stdout (paths, the table), notices and progress to stderr. The weights layer is
imported inside each command so `adacode --help` stays instant and never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from adacode_cli.errors import AdaCodeError, WeightsError

EXIT_SOME_FAILED = 1

weights_app = typer.Typer(
    help="Download and manage pretrained weights (cached as .safetensors).",
    no_args_is_help=True,
)

CACHE_DIR = typer.Option(
    None,
    "--cache-dir",
    help="Cache folder (default: ADACODE_HOME, else the user cache folder).",
    file_okay=False,
)
OFFLINE = typer.Option(
    False, "--offline", help="Never use the network (also ADACODE_OFFLINE=1)."
)
QUIET = typer.Option(False, "-q", "--quiet", help="No progress bar or informational lines.")
ALL = typer.Option(False, "--all", help="Every model.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(weights_app, name="weights")


@weights_app.command("list")
def list_weights(cache_dir: Path | None = CACHE_DIR) -> None:
    """Show every registry model and whether it is cached and verified."""
    from rich.console import Console
    from rich.filesize import decimal
    from rich.table import Table

    from adacode_cli.weights.cache import CachePaths, is_cached, read_record
    from adacode_cli.weights.registry import load_registry

    verified = {"sha256": "yes", "sha256-prefix": "prefix", "none": "no"}
    table = Table("name", "task", "scale", "size", "cached", "verified")
    for entry in load_registry().entries.values():
        paths = CachePaths.for_model(entry.name, cache_dir)
        try:
            record = read_record(paths) if is_cached(paths) else None
        except WeightsError:
            table.add_row(entry.name, entry.task, "-", "-", "damaged", "-")
            continue
        size = entry.size or (record.download_size if record else None)
        waiting = paths.partial.exists() or paths.download.exists()  # resumed by the next run
        cached = "yes" if record else "partial" if waiting else "no"
        table.add_row(
            entry.name,
            entry.task,
            str(entry.scale) if entry.scale else "-",
            decimal(size) if size else "unknown",
            cached,
            verified[record.checksum] if record else "-",
        )
    Console(soft_wrap=True).print(table)


@weights_app.command("download")
def download(
    names: list[str] | None = typer.Argument(
        None, metavar="NAME...", help="Registry names (see `weights list`)."
    ),
    all_models: bool = ALL,
    force: bool = typer.Option(
        False, "--force", help="Download again even if cached (repairs a damaged file)."
    ),
    cache_dir: Path | None = CACHE_DIR,
    offline: bool = OFFLINE,
    quiet: bool = QUIET,
) -> None:
    """Fetch, verify and convert models into the cache; print each cached file's path.

    With several models every one is tried; each failure is reported and the exit code is 1.
    """
    from adacode_cli.weights.api import ensure_weights
    from adacode_cli.weights.registry import load_registry

    registry = load_registry()
    chosen = _chosen(names, all_models) or registry.names
    for name in chosen:
        registry.get(name)  # an unknown name is refused before anything is fetched

    def fetch(name: str) -> str:
        return str(ensure_weights(
            name, cache_dir=cache_dir, offline=offline or None, quiet=quiet, force=force
        ))

    failed = _for_each(chosen, fetch)
    if failed:
        typer.echo(
            f"error: {len(failed)} of {len(chosen)} models failed: {', '.join(failed)}", err=True
        )
        raise typer.Exit(EXIT_SOME_FAILED)


@weights_app.command("path")
def path(
    name: str = typer.Argument(..., metavar="NAME", help="Registry name."),
    cache_dir: Path | None = CACHE_DIR,
    offline: bool = OFFLINE,
    quiet: bool = QUIET,
) -> None:
    """Print the cached file of NAME, downloading it first if needed."""
    from adacode_cli.weights.api import ensure_weights

    typer.echo(str(ensure_weights(name, cache_dir=cache_dir, offline=offline or None, quiet=quiet)))


@weights_app.command("verify")
def verify(
    name: str | None = typer.Argument(
        None, metavar="[NAME]", help="Registry name (default: every cached model)."
    ),
    cache_dir: Path | None = CACHE_DIR,
    quiet: bool = QUIET,
) -> None:
    """Re-hash cached files against their stored records (no network)."""
    from adacode_cli.weights.cache import CachePaths, cache_root, cached_names, verify_cached

    present = cached_names(cache_root(cache_dir) / "weights")
    names = [name] if name else present
    _refuse_unknown(names, present)
    if not names and not quiet:
        typer.echo("no weights are cached", err=True)

    def check(each: str) -> str | None:
        verify_cached(CachePaths.for_model(each, cache_dir))
        return None if quiet else f"{each}: ok"

    failed = _for_each(names, check)
    if failed:
        raise WeightsError(
            f"{len(failed)} cached model(s) failed verification: {', '.join(failed)}"
        )


def _refuse_unknown(names: list[str], present: list[str]) -> None:
    """A name neither in the registry nor in the cache is a usage error, before any work (not
    "not cached: run `adacode weights download`", which would fail too)."""
    from adacode_cli.weights.registry import load_registry, validate_name

    known = set(load_registry().names) | set(present)
    unknown = [name for name in names if validate_name(name) not in known]
    if unknown:
        raise WeightsError(
            f"unknown weights {unknown[0]!r}: neither a registry name nor in the cache "
            f"(`adacode weights list` shows both)"
        )


@weights_app.command("remove")
def remove(
    names: list[str] | None = typer.Argument(None, metavar="NAME...", help="Registry names."),
    all_models: bool = ALL,
    cache_dir: Path | None = CACHE_DIR,
    quiet: bool = QUIET,
) -> None:
    """Delete cached models and their lock files (waits for a download of the same model).

    Leftover temporary files of killed processes are deleted too, when no other adacode
    process is writing into the cache.
    """
    from adacode_cli.weights.cache import (
        CachePaths,
        cache_root,
        cached_names,
        clean_temporaries,
        remove_cached,
        unwritable_cache,
    )
    from adacode_cli.weights.lock import exclusive_lock, writers_lock

    folder = cache_root(cache_dir) / "weights"
    present = cached_names(folder, with_locks=True)
    chosen = _chosen(names, all_models) or present
    _refuse_unknown(chosen, present)
    if not chosen and not quiet:
        typer.echo("no weights are cached", err=True)
    if not folder.is_dir():
        for name in chosen:
            if not quiet:
                typer.echo(f"{name}: not cached", err=True)
        return
    try:
        with writers_lock(folder, clean=lambda: clean_temporaries(folder)):
            for name in chosen:
                paths = CachePaths.for_model(name, cache_dir)
                with exclusive_lock(paths.lock):
                    removed = remove_cached(paths)
                if not quiet:
                    typer.echo(f"{name}: {'removed' if removed else 'not cached'}", err=True)
    except OSError as error:
        raise unwritable_cache(folder, error) from error


def _for_each(names: list[str], action: Callable[[str], str | None]) -> list[str]:
    """Run `action` on every name, print the line it returns, report each failure on stderr and
    return the names that failed; a lone name's error is raised as it is (one line, exit 2)."""
    failed: list[str] = []
    for name in names:
        try:
            line = action(name)
        except AdaCodeError as error:
            if len(names) == 1:
                raise
            typer.echo(f"{name}: FAILED ({error})", err=True)
            failed.append(name)
        else:
            if line is not None:
                typer.echo(line)
    return failed


def _chosen(names: list[str] | None, all_models: bool) -> list[str]:
    """The names given, or [] for --all; exactly one of the two is required."""
    if bool(names) == all_models:
        raise WeightsError("give model names or --all (not both)")
    return names or []

