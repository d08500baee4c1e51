"""Peak memory of saving a checkpoint whose replay holds Atari frames.

    .venv/bin/python benchmarks/checkpoint_memory.py [--frames 100000 1000000]

Each case runs in a fresh process: a replay of FRAMES 84x84 uint8 frames (deepq's
frame_replay ring, filled with non-zero bytes so its pages are resident) is saved once with
`deepq.checkpoint.save` (streamed) and once the way flax's `msgpack_serialize` builds a file
(the whole state copied to numpy, then the whole file built as bytes). The figure is the
peak resident memory during the save (Linux's VmHWM, reset just before it) minus the
resident memory before it, as a multiple of the replay's size. 100k frames is the
atari-fast preset's replay (0.7 GB), 1M the nature preset's (7 GB, above flax's 1 GiB
chunk size); the flax case runs only where ~5x the replay fits in the available memory.
Writes benchmarks/results/checkpoint_memory.{md,json}.
"""

from __future__ import annotations

from deepq.atomic import atomic_write_bytes
from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(mode: str, frames: int) -> dict:
    """One save in this process; memory in MiB."""
    import jax
    import jax.numpy as jnp
    from flax import serialization

    from deepq import checkpoint, frame_replay

    replay = frame_replay.init(frames, 1, (84, 84), 4)
    replay = replay.replace(frames=jnp.full(replay.frames.shape, 7, jnp.uint8))
    jax.block_until_ready(replay)
    replay_mib = replay.frames.nbytes / 2**20
    with tempfile.TemporaryDirectory(dir=os.environ.get("DEEPQ_BENCH_TMP")) as run:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = rss_kib("VmRSS")
        start = time.perf_counter()
        if mode == "stream":
            path = checkpoint.save(Path(run), 0, replay, {"clock": 0})
        else:
            tree = serialization.to_state_dict(jax.device_get(replay))
            data = serialization.msgpack_serialize({"meta": {"clock": 0}, "state": tree})
            path = Path(run) / "flax.msgpack"
            atomic_write_bytes(path, data)
            del data
        seconds = time.perf_counter() - start
        peak = rss_kib("VmHWM")
        size = path.stat().st_size
        intact = None  # reading back holds ~3 more copies: checked where they fit
        if 4 * replay.frames.nbytes < os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"):
            restored = checkpoint.read_raw(path)["state"]["frames"]
            intact = bool((restored == 7).all()) and restored.shape == replay.frames.shape
    return {"mode": mode, "frames": frames, "replay_mib": replay_mib,
            "extra_peak_mib": (peak - before) / 1024, "file_mib": size / 2**20,
            "seconds": seconds, "reads_back": intact}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--case", choices=["stream", "flax"])
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.frames[0])))
        return
    rows = []
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for frames in args.frames:
        for mode in ("stream", "flax"):
            if mode == "flax" and 5 * frames * 84 * 84 > available:
                continue
            out = subprocess.run([sys.executable, __file__, "--case", mode, "--frames",
                                  str(frames)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checkpoint_memory.json").write_text(json.dumps(
        {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
         "rows": rows}, indent=2) + "\n")
    lines = [f"# Checkpoint save: peak memory ({machine})", "",
             "A frame replay of 84x84 uint8 frames saved once; `extra peak`: peak resident "
             "memory during the save minus that before it; `reads back`: "
             "flax's reader returns the frames (not checked where it would not fit in memory)."
             , "",
             "| writer | frames | replay MiB | extra peak MiB | x replay | file MiB | s | "
             "reads back |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['frames']:,} | {r['replay_mib']:.0f} | "
                     f"{r['extra_peak_mib']:.0f} | {r['extra_peak_mib'] / r['replay_mib']:.2f} "
                     f"| {r['file_mib']:.0f} | {r['seconds']:.1f} | "
                     f"{'not checked' if r['reads_back'] is None else r['reads_back']} |")
    (RESULTS / "checkpoint_memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
