"""Helpers of the weights tests: a scriptable loopback HTTP server, test registries, fixture files.

Nothing here reaches the internet. Registry URLs stay https (as the registry requires) on an
unresolvable host; every test fetches through ADACODE_MIRROR pointed at the loopback server.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

OFFICIAL_BASE = "https://weights.invalid/release"
LOSS_FILE = "loss_a.pth"
PREFIX_FILE = "loss_b-prefix.pth"
DISC_FILE = "disc_d.pth"
SR_FILE = "tiny_sr_x4_g.pth"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FixtureServer:
    """What the handler serves and how it misbehaves; every test scripts its own."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    drop_after: dict[str, int] = field(default_factory=dict)  # send N bytes, then hang up (once)
    failures: dict[str, list[int]] = field(default_factory=dict)  # statuses to answer first
    ignore_range: bool = False
    send_length: bool = True
    gate: threading.Event | None = None  # when set up, bodies wait for it
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gets(self, name: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/" + name)]


def _handler(state: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            """Keep the test output clean."""

        def do_GET(self) -> None:
            state.requests.append(Request("GET", self.path, dict(self.headers.items())))
            name = urlsplit(self.path).path.rsplit("/", 1)[-1]
            script = state.failures.get(name)
            if script:
                self.send_error(script.pop(0))
                return
            if name not in state.files:
                self.send_error(404)
                return
            data = state.files[name]
            start = self._range_start()
            if start is not None and start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if start is None:
                self.send_response(200)
                start = 0
            else:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if state.send_length:
                self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if state.gate is not None:
                state.gate.wait(30)
            body = data[start:]
            cut = state.drop_after.pop(name, None)
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
            self.close_connection = True

        def _range_start(self) -> int | None:
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            return None if match is None or state.ignore_range else int(match.group(1))

    return Handler


@contextlib.contextmanager
def serve(state: FixtureServer) -> Iterator[FixtureServer]:
    """Run `state` on an ephemeral loopback port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.gate is not None:
            state.gate.set()
        server.shutdown()
        server.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _saved(obj: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@functools.cache
def loss_bytes() -> bytes:
    """A plain state dict, big enough (about 200 kB) to be cut mid-file."""
    import torch

    generator = torch.Generator().manual_seed(0)
    return _saved({
        "features.0.weight": torch.randn(64, 3, 3, 3, generator=generator),
        "features.0.bias": torch.randn(64, generator=generator),
        "classifier.weight": torch.randn(32, 1500, generator=generator),
    })


@functools.cache
def disc_bytes() -> bytes:
    """A BasicSR-style discriminator file: `{'params': state_dict}`."""
    import torch

    state = {"conv0.weight": torch.ones(8, 3, 3, 3), "conv0.bias": torch.zeros(8)}
    return _saved({"params": state})


@functools.cache
def sr_bytes() -> bytes:
    """A tiny AdaCode x4 network in the official `{'params': state_dict}` format."""
    from adacode_cli.model.config import AdaCodeConfig
    from adacode_cli.model.networks import build_network

    return _saved({"params": build_network(AdaCodeConfig.tiny("sr", 4)).state_dict()})


def entry(name: str, kind: str, file: str, *, task: str = "loss", scale: int | None = None,
          sha: str | None = None, prefix: str | None = None, size: int | None = None,
          default: bool = False) -> dict:
    return {
        "name": name, "kind": kind, "task": task, "scale": scale, "default": default,
        "url": f"{OFFICIAL_BASE}/{file}", "sha256": sha, "sha256_prefix": prefix, "size": size,
        "license": "MIT", "source": "test fixture",
    }


def default_entries() -> list[dict]:
    return [
        entry("loss-a", "loss-network", LOSS_FILE, sha=sha256(loss_bytes())),
        entry("loss-b", "loss-network", PREFIX_FILE, prefix=sha256(loss_bytes())[:8]),
        entry("disc", "discriminator", DISC_FILE, task="recon", scale=1),
        entry("tiny-sr", "adacode", SR_FILE, task="sr", scale=4, default=True),
        entry("tiny-sr2", "adacode", "tiny_sr_x2_g.pth", task="sr", scale=2, default=True),
    ]


def write_registry(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "models": entries}), encoding="utf-8")
    return path


def default_files() -> dict[str, bytes]:
    return {LOSS_FILE: loss_bytes(), PREFIX_FILE: loss_bytes(), DISC_FILE: disc_bytes(),
            SR_FILE: sr_bytes()}


def cache_files(cache: Path) -> list[str]:
    """What the weights cache holds, lock files aside (they are kept on purpose)."""
    folder = cache / "weights"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock")


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def adacode_process(
    *args: str, umask: int | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real `adacode` in a subprocess (exit codes, tracebacks, file modes), with `umask`."""
    return subprocess.run(
        [sys.executable, "-m", "adacode_cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False, umask=-1 if umask is None
        else umask,
    )


def start_adacode(*args: str) -> subprocess.Popen[str]:
    """The real `adacode` running in the background (to signal or race it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "adacode_cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def flip_bit(path: Path, offset: int = -1) -> None:
    """Damage a file the way a bad disk does: one bit, same size."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def record_as_downloaded(folder: Path, name: str, kind: str = "loss-network") -> None:
    """Write the cache record of `folder/NAME.safetensors`, as a download would, so a stand-in
    file put into a test cache passes the check every use makes."""
    from adacode_cli.weights.cache import CachePaths, CacheRecord, sha256_file, write_record

    paths = CachePaths(folder, name)
    write_record(paths, CacheRecord(
        name=name, kind=kind, url=f"{OFFICIAL_BASE}/{name}.pth", download_sha256="0" * 64,
        download_size=0, safetensors_sha256=sha256_file(paths.safetensors), checksum="none",
        downloaded_at="2026-01-01T00:00:00+00:00", tool_version="test",
    ))
