"""Memory profiles of the released model kinds, shipped with the package, so that even the first
run of an official model starts at once.

Counting a profile on the meta device costs over a second of a first run (the convolution meta
kernels import torch's compiler stack). For the official configurations the counts are made
once, by `python -m adacode_cli.engine.shipped_profiles`, and shipped in
`shipped_profiles.json`; `tests/test_engine_profile_cache.py` counts them again, so a change to
the network that changes its memory fails the suite until they are written again. A shipped
profile stands for every build of its torch version (`2.13.0+cpu` and `2.13.0` alike): the count
runs on the meta device and depends on neither.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch

from adacode_cli.model.config import AdaCodeConfig

SHIPPED_PATH = Path(__file__).with_name("shipped_profiles.json")
OFFICIAL = (("sr", 2), ("sr", 4), ("inpaint", 1), ("recon", 1))
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
DEVICE_TYPES = ("cpu", "cuda", "mps")  # accelerators share a count (their Swin chunks)

Record = dict[str, Any]


def portable(key: Record) -> str:
    """`key` as shipped: JSON, with the torch version without its build suffix."""
    return json.dumps({**key, "torch": str(key["torch"]).split("+")[0]}, sort_keys=True)


@functools.cache
def _entries() -> dict[str, Record]:
    try:
        data = json.loads(SHIPPED_PATH.read_text(encoding="utf-8"))
        return {portable(entry["key"]): entry["profile"] for entry in data}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def shipped(key: Record) -> Record | None:
    """The shipped profile for `key`, None where none was shipped."""
    profile = _entries().get(portable(key))
    return None if profile is None else dict(profile)


def count_official() -> list[Record]:
    """Every shipped entry, counted now on the meta device."""
    from adacode_cli.engine.memory import count_on_meta
    from adacode_cli.engine.profile_cache import profile_key

    entries = []
    for task, scale in OFFICIAL:
        config = AdaCodeConfig.official(task, scale)  # type: ignore[arg-type]
        for dtype in DTYPES:
            records = {"cpu": count_on_meta(config, dtype, "cpu").to_record(),
                       "accelerator": count_on_meta(config, dtype, "cuda").to_record()}
            for device in DEVICE_TYPES:
                key = json.loads(portable(profile_key(config, dtype, device)))
                record = records["cpu" if device == "cpu" else "accelerator"]
                entries.append({"key": key, "profile": record})
    return entries


def main() -> None:
    SHIPPED_PATH.write_text(json.dumps(count_official(), sort_keys=True) + "\n",
                            encoding="utf-8")
    print(f"wrote {SHIPPED_PATH}")


if __name__ == "__main__":
    main()
