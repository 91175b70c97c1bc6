"""One restoration command from options to exit code: check, load the model, run the batch, report.

Everything that can be checked without the model (the inputs, the output plan with every file the
run will write, masks, the weights file) is checked before torch is even imported, so a mistake
is reported in a fraction of a second with exit code 2.

Ctrl-C before the first image (weights download, model load) stops at once: one "interrupted"
line, exit 130. During the batch the first press asks the engine to stop after its current step
and, should that step not return within `STOP_GRACE_SECONDS`, stops it anyway; either way the
summary is printed, nothing partial is left, and the exit code is 130.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from adacode_cli.atomic import remove_stale_temporaries
from adacode_cli.cli.options import DEFAULT_CRF, DEFAULT_QUALITY, SharedOptions
from adacode_cli.cli.scaleout import parse_shard
from adacode_cli.errors import AdaCodeError, ExitCode
from adacode_cli.images.inputs import Skipped, input_root, list_inputs, resolved, spelled_path
from adacode_cli.images.outputs import (
    WEIGHT_MAP,
    OutputRequest,
    PlannedImage,
    earlier_results,
    plan_run,
)
from adacode_cli.interrupt import StopRequest
from adacode_cli.video.codecs import CONTAINERS, choose_codec

if TYPE_CHECKING:
    from adacode_cli.cli.tasks import Task
    from adacode_cli.engine.restorer import Restorer
    from adacode_cli.model.config import AdaCodeConfig

STOP_GRACE_SECONDS = 0.5
STOP_NOTICE = "stopping after the current tile batch (Ctrl-C again to abort now)"


@dataclass
class RunPlan:
    """What a run will do, settled before the model loads."""

    images: list[PlannedImage]
    skipped: list[Skipped]
    weights: Path
    videos: list[PlannedImage] = field(default_factory=list)


def run_restoration(
    task_name: str,
    input_spec: str,
    output: str | None,
    shared: SharedOptions,
    *,
    make_task: Callable[[AdaCodeConfig], Task],
    scale: int | None = None,
    default_scale: int | None = None,
    side_inputs: Callable[[list[Path]], list[Path]] | None = None,
) -> None:
    """Restore every image `input_spec` names with a `task_name` model and exit with the status.

    `scale` is what the user asked for (a model of another scale is refused); without it the
    model's own scale is used, and the registry default is looked up at `default_scale`.
    `side_inputs` names the other files the task reads for some inputs (inpainting's masks):
    they are checked up front and never written.
    """
    with StopRequest(grace=0) as early:  # nothing to wind down yet: Ctrl-C stops at once
        plan = prepare_run(task_name, input_spec, output, shared, side_inputs,
                           scale=scale if scale is not None or shared.weights else default_scale,
                           should_stop=early)
        from adacode_cli.cli.scaleout_job import join_job

        job = join_job(shared.shard, shared.device)
        restorer = load_restorer(plan.weights, task_name, scale, shared)
    from adacode_cli.cli.batch import WriteSettings, run_batch
    from adacode_cli.cli.report import INTERRUPTED, Reporter

    task = make_task(restorer.config)
    work, skipped = job.share([*plan.images, *plan.videos], plan.skipped,
                              overwrite=shared.overwrite)
    images = [item for item in work if not item.is_video]
    videos = [item for item in work if item.is_video]
    reporter = Reporter(
        job.total, json_lines=shared.json_lines, quiet=shared.quiet or not job.is_main,
        verbose=shared.verbose, json_fields=job.json_fields(), count_finished=job.count_finished,
    )
    if shared.verbose:
        config = restorer.config
        reporter.say(f"model: {config.task} x{config.scale}, device {restorer.device}, "
                     f"precision {restorer.precision}")
    settings = WriteSettings(shared.quality, shared.overwrite, shared.save_weight_map)
    started = time.perf_counter()
    stop = StopRequest(notice=STOP_NOTICE, grace=STOP_GRACE_SECONDS)
    with stop, reporter, job.live_progress(reporter.show_finished):
        outcomes = run_batch(images, skipped=skipped, task=task, restorer=restorer,
                             settings=settings, reporter=reporter, should_stop=stop)
        if videos and not stop():
            from adacode_cli.cli.video_batch import run_videos

            outcomes += run_videos(videos, task=task, restorer=restorer, shared=shared,
                                   reporter=reporter, stop=stop)
        interrupted = stop() or any(outcome.status == INTERRUPTED for outcome in outcomes)
        result = job.gather(outcomes, interrupted)
    reporter.summary(result.outcomes, time.perf_counter() - started, interrupted=result.interrupted)
    if result.interrupted:
        raise typer.Exit(ExitCode.INTERRUPTED)
    if result.failed:
        raise typer.Exit(ExitCode.SOME_FAILED)


def prepare_run(
    task_name: str,
    input_spec: str,
    output: str | None,
    shared: SharedOptions,
    side_inputs: Callable[[list[Path]], list[Path]] | None = None,
    *,
    scale: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunPlan:
    """Inputs, the output plan and the weights file, all checked (torch is not imported)."""
    parse_shard(shared.shard)  # a mistake in it is reported before any download
    listing = list_inputs(input_spec, shared.recursive)
    request = OutputRequest.spelled(
        output, task_name, ext=shared.ext.value, suffix=shared.suffix,
        side_files=(WEIGHT_MAP,) if shared.save_weight_map else (), animated=shared.animated,
    )
    inputs = _new_inputs(listing.files, input_spec, request)
    read = side_inputs(inputs) if side_inputs is not None else []
    weights_file = _weights_file(shared.weights)
    planned = plan_run(inputs, input_root=input_root(input_spec), request=request,
                       protected=[*read, *([weights_file] if weights_file else [])])
    images, videos = split_videos(planned, shared)
    for folder in {image.result.parent for image in planned}:
        remove_stale_temporaries(folder)
    from adacode_cli.weights.api import check_weights_file, resolve_weights  # rich, requests

    weights = resolve_weights(shared.weights, task=task_name, scale=scale,
                              cache_dir=shared.cache_dir, offline=True if shared.offline else None,
                              quiet=shared.quiet, should_stop=should_stop)
    held = check_weights_file(weights, task_name, scale)
    if held is not None:
        refuse_weight_map_without_weights(shared, held, weights)
    return RunPlan(images, listing.skipped, weights, videos)


def refuse_weight_map_without_weights(
    shared: SharedOptions, config: AdaCodeConfig, weights: Path
) -> None:
    """A stage-1 VQGAN has one codebook and no weight predictor: `--save-weight-map` would
    write nothing, so it is refused (from the header, or once loaded if that could not tell)."""
    if shared.save_weight_map and config.stage == "vqgan":
        raise AdaCodeError(f"{weights} holds a stage-1 VQGAN (one codebook, no weights to map): "
                           "--save-weight-map would write nothing; leave it out")


def split_videos(
    planned: list[PlannedImage], shared: SharedOptions
) -> tuple[list[PlannedImage], list[PlannedImage]]:
    """(images, videos) of the planned items. For videos the codec must suit each container
    (`--video-codec`, `--crf`) and the video extra must be installed: checked here, before the
    model loads."""
    images = [item for item in planned if not item.is_video]
    videos = [item for item in planned if item.is_video]
    refuse_unused_options(images, videos, shared)
    for video in videos:
        choose_codec(shared.video_codec.value, video.result.suffix, shared.crf)
    if videos:
        from adacode_cli.video.ffmpeg import ffmpeg_exe

        ffmpeg_exe()
    return images, videos


def refuse_unused_options(
    images: list[PlannedImage], videos: list[PlannedImage], shared: SharedOptions
) -> None:
    """An option that would change no file of this run is a usage error, never silently
    ignored: video settings without a video, an `--ext` of the other kind than every input,
    tile settings with `--tile 0`, a `--quality` without a JPEG/WebP result. (`--save-weight-map`
    for a video and `--suffix` for a named result file: `plan_run`.)"""
    ext = shared.ext.value
    video_ext = ext != "auto" and f".{ext}" in CONTAINERS
    unused = []
    if not videos:
        given = [("--video-codec", shared.video_codec.value != "auto"),
                 ("--crf", shared.crf != DEFAULT_CRF), ("--no-resume", not shared.resume),
                 (f"--ext {ext}", video_ext)]
        unused += [f"{option} applies to videos, but no input is a video"
                   for option, set_ in given if set_]
    elif shared.video_codec.value == "ffv1" and shared.crf != DEFAULT_CRF:
        unused.append("--crf sets the quality of lossy codecs, but ffv1 is lossless")
    if not images and ext != "auto" and not video_ext:
        unused.append(f"--ext {ext} applies to images, but every input is a video")
    if shared.tile == 0:
        whole = [("--tile-overlap", shared.tile_overlap is not None),
                 (f"--statistics {shared.statistics.value}", shared.statistics.value != "auto")]
        unused += [f"{option} applies to tiles, but --tile 0 runs each image whole"
                   for option, set_ in whole if set_]
    lossy = {".jpg", ".jpeg", ".webp"}
    if shared.quality != DEFAULT_QUALITY and not any(
            image.result.suffix.lower() in lossy for image in images):
        unused.append("--quality sets the JPEG/WebP quality, but no result of this run is a "
                      "JPEG or WebP image (videos: --crf)")
    if unused:
        raise AdaCodeError(f"{unused[0]}; leave it out")


def _new_inputs(inputs: list[Path], input_spec: str, request: OutputRequest) -> list[Path]:
    """The inputs less this run's own earlier results: those in an output folder inside the
    input folder, and those named as this run would name a result (same-folder runs)."""
    if request.names_one_file:
        return inputs
    root = resolved(input_root(input_spec))
    below = resolved(request.folder)
    if below != root:
        inputs = [path for path in inputs if not resolved(path).is_relative_to(below)]
    results = earlier_results(inputs, input_root=input_root(input_spec), request=request)
    inputs = [path for path in inputs if path not in results]
    if not inputs:
        raise AdaCodeError(f"{input_spec}: no images outside the output folder {request.folder}")
    return inputs


def _weights_file(spec: str | None) -> Path | None:
    """The `--weights` file, if it names one; a file we cannot read is a usage error now."""
    if not spec:
        return None
    path = spelled_path(os.path.expanduser(spec))  # `model.safetensors/` is no file
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as weights:
            weights.read(1)
    except OSError as error:
        raise AdaCodeError(f"{path}: cannot read the weights file ({error.strerror})") from error
    return path


def load_restorer(
    weights: Path, task_name: str, scale: int | None, shared: SharedOptions
) -> Restorer:
    """The engine around the `weights` model; a model for another task or scale, or without a
    weight map to save, is refused (checked here again for the files whose header could not
    tell: `check_weights_file`)."""
    from adacode_cli.engine.restorer import RestoreOptions, Restorer
    from adacode_cli.weights.api import refuse_unfit_model

    options = RestoreOptions(
        device=shared.device,
        precision=shared.precision.value,
        tile=shared.tile,
        tile_overlap=shared.tile_overlap,
        batch_size=shared.batch_size,
        compile=shared.compile.value,
        statistics=shared.statistics.value,
    )
    restorer = Restorer.from_file(weights, options)
    refuse_unfit_model(weights, restorer.config.task, restorer.config.scale, task_name, scale)
    refuse_weight_map_without_weights(shared, restorer.config, weights)
    return restorer
