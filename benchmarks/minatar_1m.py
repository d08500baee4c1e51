"""Wall time of 1M steps of MinAtar-Breakout DQN (the `minatar` preset), one seed, this CPU.

    .venv/bin/python benchmarks/minatar_1m.py                 # 1M steps, 1 run
    .venv/bin/python benchmarks/minatar_1m.py --steps 200000  # a shorter check

The preset is the MinAtar paper's DQN: one update per frame (batch 32, the 16@3x3 conv ->
128 network, centered RMSProp), a 5,000-step random warm-up, replay 100k. The run is
`deepq train ... --no-artifacts --set checkpoint_every=0` in a subprocess, so the wall time
counts interpreter start, imports and the XLA compile. Reference: rejax and CleanRL report
about 20 minutes for 1M steps on an A100 machine. Processes matching ``--pause`` (long
background runs sharing the box) are stopped for the measurement and continued after it.
Writes benchmarks/results/minatar_1m.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from atari_throughput import HERE, CpuMeter, Paused, git, machine


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pause", default="/work/runs/",
                   help="pgrep -f pattern of processes to stop meanwhile ('' for none)")
    p.add_argument("--deepq", default=str(Path(sys.executable).parent / "deepq"))
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="deepq-minatar-") as tmp, Paused(args.pause) as paused:
        out = Path(tmp) / "run"
        cmd = [args.deepq, "train", "--env", "Breakout-MinAtar", "--preset", "minatar",
               "--seed", str(args.seed), "--total-steps", str(args.steps),
               "--set", "checkpoint_every=0", "--set", "chunk_steps=50000",
               "--no-artifacts", "--quiet", "--out", str(out), "--force"]
        with CpuMeter() as meter:
            subprocess.run(cmd, check=True, capture_output=True)
        summary = json.loads((out / "summary.json").read_text())
        returns = _last_returns(out / "metrics.csv")
    m = machine()
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": m,
           "commit": git("rev-parse", "HEAD")[:12], "steps": args.steps, "seed": args.seed,
           **meter.fields(), "train_s": summary["train_seconds"],
           "first_chunk_s": summary["first_chunk_seconds"],
           "last_chunk_steps_per_sec": summary["last_chunk_steps_per_sec"],
           "mean_return_last_100_episodes": returns, "paused": len(paused.pids),
           "command": " ".join(cmd[1:])}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "minatar_1m.json").write_text(json.dumps(doc, indent=1) + "\n")
    minutes = doc["wall_s"] / 60
    md = [
        "# MinAtar-Breakout DQN: wall time of one run",
        "",
        f"Measured {doc['date']} by `benchmarks/minatar_1m.py` at commit {doc['commit']}. "
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, no GPU.",
        "",
        "| steps | seed | wall | training loop | compile + first chunk | last chunk steps/s "
        "| other cores busy | mean return, last 100 training episodes |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.steps:,} | {args.seed} | {doc['wall_s']:.0f} s ({minutes:.1f} min) | "
        f"{doc['train_s']:.0f} s | {doc['first_chunk_s']:.1f} s | "
        f"{doc['last_chunk_steps_per_sec']:.0f} | {doc['other_cores']:.2f} | {returns:.2f} |",
        "",
        "The `minatar` preset (the MinAtar paper's DQN, one update per step); wall time is the "
        "whole `deepq train` process. rejax and CleanRL report about 20 minutes for 1M steps "
        f"on an A100 machine. {len(paused.pids)} background process(es) were paused.",
        "",
        f"Command: `deepq {doc['command']}`",
        "",
    ]
    (args.out_dir / "minatar_1m.md").write_text("\n".join(md))
    print("\n".join(md))


def _last_returns(metrics_csv: Path, episodes: int = 100) -> float:
    """Mean return of the last `episodes` training episodes (epsilon 0.1 by then)."""
    import csv

    with metrics_csv.open() as f:
        rows = list(csv.DictReader(f))
    tail = [float(r["return"]) for r in rows[-episodes:]]
    return sum(tail) / max(len(tail), 1)


if __name__ == "__main__":
    main()
