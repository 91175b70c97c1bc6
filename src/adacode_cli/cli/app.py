"""The `adacode` entry point: builds the Typer app and turns user errors into one line + exit code.

Nothing here imports torch: `adacode --help` must stay instant. Each command module imports the
heavy layers inside its command functions.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
from typing import Any

import typer
from typer.core import TyperGroup

from adacode_cli import __version__
from adacode_cli.cli import data_cmds, model_cmds, restore_cmds, train_cmds, weights_cmds
from adacode_cli.cli.helpstyle import plain_help
from adacode_cli.cli.printable import printable, printable_lines
from adacode_cli.errors import AdaCodeError, ExitCode
from adacode_cli.interrupt import sigterm_as_interrupt


class _AdaCodeGroup(TyperGroup):
    """The root command group: Ctrl-C anywhere in a command ends with one line and exit 130
    (Typer's own handling would exit 130 without a word)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(ExitCode.INTERRUPTED) from None


app = typer.Typer(
    cls=_AdaCodeGroup,
    name="adacode",
    help="AdaCode image restoration: super-resolution, inpainting and reconstruction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"adacode {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show tracebacks on errors."),
) -> None:
    """AdaCode image restoration (Liu et al., ICCV 2023)."""


for _module in (restore_cmds, weights_cmds, model_cmds, train_cmds, data_cmds):
    _module.register(app)


def _wants_traceback(argv: list[str]) -> bool:
    return any(arg in ("-v", "--verbose") or (arg.startswith("-v") and set(arg[1:]) == {"v"})
               for arg in argv)


def _escape_unprintable_names() -> None:
    """File names are bytes on Linux and need not be valid in the terminal's encoding: print
    them with escapes (as Python's stderr already does) instead of failing the run after its
    files were written."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _system_error(error: OSError) -> str:
    """`path: reason` for an error of the operating system (disk full, permission denied)."""
    reason = error.strerror or str(error) or type(error).__name__
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a user-caused error prints one line (a traceback only with -v).

    Typer handles usage errors itself (exit 2); our own errors carry their exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    _escape_unprintable_names()
    if not _wants_traceback(args):
        # Pillow warns about damaged metadata (a cut TIFF's or JPEG's EXIF) on stderr, in two
        # lines naming its own source; what matters of a damaged file is our one line
        warnings.filterwarnings("ignore", module="PIL")
    try:
        with sigterm_as_interrupt():
            app(args=args, prog_name="adacode")
    except AdaCodeError as error:
        if _wants_traceback(args):
            traceback.print_exc()
        typer.echo(f"error: {printable_lines(str(error))}", err=True)
        sys.exit(error.exit_code)
    except OSError as error:  # the system refused a read or write we did not foresee
        if _wants_traceback(args):
            traceback.print_exc()
        typer.echo(f"error: {printable(_system_error(error))}", err=True)
        sys.exit(ExitCode.SOME_FAILED)
    except KeyboardInterrupt:  # outside any command: while parsing the arguments
        typer.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
