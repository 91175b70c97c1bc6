"""Help that reads like a usual command-line tool's: `adacode sr [OPTIONS] INPUT [OUTPUT]`.

Typer writes required arguments as `{INPUT}` in usage lines and a `<bool>` / `<str>` placeholder
beside every flag and argument. `plain_help` restyles every parameter of a command tree once,
when the root group is built, so every command (present and future) gets the same style: flags
without a placeholder, values as INTEGER / FLOAT / TEXT / PATH or their choices, arguments by
name only.
"""

from __future__ import annotations

import inspect
from typing import Any

from typer import Context
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_VALUE_NAMES = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "path": "PATH", "dir": "PATH",
                "file": "PATH", "bool": "BOOLEAN"}


class _PlainArgument(TyperArgument):
    @property
    def display_name_raw(self) -> str:
        return self.metavar if self.metavar is not None else (self.name or "").upper()

    def _usage_display_name(self) -> str:
        more = "..." if self.nargs != 1 and self.metavar is None else ""
        name = self.display_name_raw + more
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


class _PlainOption(TyperOption):
    def display_type_rich(self, ctx: Context) -> str | None:
        if self.is_flag or self.count:
            return None
        shown = super().display_type_rich(ctx)
        if shown is None or self.metavar is not None:
            return shown
        label = shown.strip("<>")
        if "|" in label:
            return f"[{label}]"
        return _VALUE_NAMES.get(label.split()[0], label.upper())


def plain_help(command: TyperCommand | TyperGroup) -> None:
    """Restyle the parameters of `command` and of every sub-command below it (`--help` too,
    which each command makes when its help is shown)."""
    for param in command.params:
        _restyle(param)
    if command.help:
        command.help = _unwrapped(command.help)
    make_help_option = command.get_help_option

    def get_help_option(ctx: Context) -> Any:
        option = make_help_option(ctx)
        if option is not None:
            _restyle(option)
        return option

    command.get_help_option = get_help_option  # type: ignore[method-assign]
    for child in getattr(command, "commands", {}).values():
        plain_help(child)


def _unwrapped(text: str) -> str:
    """Docstring paragraphs as single lines, so the help panel wraps them at its own width
    instead of keeping the source's line breaks in the middle of a sentence."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in block.splitlines())
                         for block in paragraphs)


def _restyle(param: object) -> None:
    if type(param) is TyperArgument:
        param.__class__ = _PlainArgument
    elif type(param) is TyperOption:
        param.__class__ = _PlainOption
