"""One restoration command from options to exit code: plan, load the model, run the batch, report.

Everything that can be checked cheaply (inputs exist, outputs do not collide with inputs) is
checked before the model loads, so a typo fails in a fraction of a second with exit code 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import typer

from adacode_cli.cli.batch import WriteSettings, run_batch
from adacode_cli.cli.interrupt import StopRequest
from adacode_cli.cli.options import SharedOptions
from adacode_cli.cli.report import FAILED, INTERRUPTED, Reporter
from adacode_cli.cli.tasks import Task
from adacode_cli.cli.video_batch import run_videos, split_videos
from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.errors import AdaCodeError
from adacode_cli.images.inputs import collect_inputs, input_root, is_file_output, plan_outputs
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.weights.api import resolve_weights

EXIT_SOME_FAILED = 1
EXIT_INTERRUPTED = 130


def run_restoration(
    task_name: str,
    input_spec: str,
    output: Path | None,
    shared: SharedOptions,
    *,
    make_task: Callable[[AdaCodeConfig], Task],
    scale: int | None = None,
    default_scale: int | None = None,
) -> None:
    """Restore every image `input_spec` names with a `task_name` model and exit with the status.

    `scale` is what the user asked for (a model of another scale is refused); without it the
    model's own scale is used, and the registry default is looked up at `default_scale`.
    """
    plan = plan_jobs(input_spec, output, task_name, shared)
    plan, videos = split_videos(plan, shared)
    restorer = load_restorer(task_name, scale, default_scale, shared)
    task = make_task(restorer.config)
    stop = StopRequest()
    reporter = Reporter(
        len(plan) + len(videos),
        json_lines=shared.json_lines, quiet=shared.quiet, verbose=shared.verbose,
    )
    if shared.verbose:
        config = restorer.config
        reporter.say(f"model: {config.task} x{config.scale}, device {restorer.device}, "
                     f"precision {restorer.precision}")
    settings = WriteSettings(shared.quality, shared.overwrite, shared.save_weight_map)
    started = time.perf_counter()
    with stop.catching_ctrl_c(), reporter:
        outcomes = run_batch(plan, task=task, restorer=restorer, settings=settings,
                             reporter=reporter, should_stop=stop)
        outcomes += run_videos(videos, task=task, restorer=restorer, shared=shared,
                               reporter=reporter, should_stop=stop)
    interrupted = stop() or any(outcome.status == INTERRUPTED for outcome in outcomes)
    reporter.summary(outcomes, time.perf_counter() - started, interrupted=interrupted)
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if any(outcome.status == FAILED for outcome in outcomes):
        raise typer.Exit(EXIT_SOME_FAILED)


def plan_jobs(
    input_spec: str, output: Path | None, task_name: str, shared: SharedOptions
) -> list[tuple[Path, Path]]:
    """(input, output) pairs; earlier results inside the output folder are not inputs again."""
    inputs = collect_inputs(input_spec, shared.recursive)
    writes_a_file = output is not None and is_file_output(output)
    if Path(input_spec).is_dir() and not writes_a_file:
        folder = output or Path(f"adacode-{task_name}")
        below = folder.resolve()
        inputs = [path for path in inputs if not path.resolve().is_relative_to(below)]
        if not inputs:
            raise AdaCodeError(f"{input_spec}: no images outside the output folder {folder}")
    outputs = plan_outputs(
        inputs,
        input_root=input_root(input_spec),
        output=output,
        task=task_name,
        ext=shared.ext.value,
        suffix=shared.suffix,
    )
    return list(zip(inputs, outputs, strict=True))


def load_restorer(
    task_name: str, scale: int | None, default_scale: int | None, shared: SharedOptions
) -> Restorer:
    """The engine around the `--weights` model; a model for another task or scale is refused."""
    weights = resolve_weights(
        shared.weights,
        task=task_name,
        scale=scale if scale is not None or shared.weights else default_scale,
        cache_dir=shared.cache_dir,
        offline=True if shared.offline else None,
        quiet=shared.quiet,
    )
    options = RestoreOptions(
        device=shared.device,
        precision=shared.precision.value,
        tile=shared.tile,
        tile_overlap=shared.tile_overlap,
        batch_size=shared.batch_size,
    )
    restorer = Restorer.from_file(weights, options)
    config = restorer.config
    if config.task != task_name or (scale is not None and config.scale != scale):
        wanted = f"{task_name} x{scale}" if scale is not None else task_name
        raise AdaCodeError(
            f"{weights} holds a {config.task} x{config.scale} model, not {wanted} "
            f"(see `adacode weights list`, or `adacode info {weights}`)"
        )
    return restorer
