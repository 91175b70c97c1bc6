"""Memory profiles kept between runs, so only the first run of a model pays for measuring one.

Counting a network's activation bytes on the meta device costs seconds of CPU (a full step-graph
pass under a dispatch mode that follows every tensor), and the result depends only on the model
configuration, the precision, the device it is for and the torch version. Each profile is kept
as a small JSON file under `<cache root>/profiles/`, named by a hash of those four, and written
atomically: concurrent runs at worst both measure and both write the same file. A file that is
unreadable or from another format version is measured again and replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from adacode_cli.atomic import atomic_write_text
from adacode_cli.engine.shipped_profiles import shipped
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.weights.cache import cache_root

FORMAT_VERSION = 4  # 2: counts the `whole` steps; 3: as fixed + per-pixel bytes; 4: per device type

Record = dict[str, Any]
T = TypeVar("T")


def profile_key(config: AdaCodeConfig, dtype: torch.dtype, device: str) -> Record:
    """Everything a profile depends on; `device` names the device kind (or model) it is for."""
    return {
        "format": FORMAT_VERSION,
        "config": config.to_dict(),
        "dtype": str(dtype),
        "device": device,
        "torch": torch.__version__,
    }


def profile_path(key: Record) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
    return cache_root() / "profiles" / f"{digest[:24]}.json"


def cached(key: Record, measure: Callable[[], Record], parse: Callable[[Record], T]) -> T:
    """`parse` of the stored profile for `key`, else of the one shipped with the package for the
    official models (`shipped_profiles`), else of `measure()`, stored for the next run.

    A stored profile is used only if `parse` accepts it (a file edited or damaged into other
    values is measured again); a cache folder that cannot be written costs only the speed-up,
    never the run.
    """
    path = profile_path(key)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("key") == json.loads(json.dumps(key)):
            return parse(dict(stored["profile"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    packaged = shipped(key)
    if packaged is not None:
        return parse(packaged)
    measured = measure()
    with contextlib.suppress(OSError):
        atomic_write_text(path, json.dumps({"key": key, "profile": measured}, sort_keys=True))
    return parse(measured)
