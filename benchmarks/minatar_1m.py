"""Wall time of 1M steps of MinAtar-Breakout DQN (the `minatar` preset), one seed, this CPU.

    .venv/bin/python benchmarks/minatar_1m.py                 # 1M steps, 1 run
    .venv/bin/python benchmarks/minatar_1m.py --steps 200000  # a shorter check
    .venv/bin/python benchmarks/minatar_1m.py --repeats 3     # 3 runs and their median

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
import statistics
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
    p.add_argument("--repeats", type=int, default=1,
                   help="runs one after another (this VM's speed drifts by a quarter over "
                        "hours: quote the median)")
    p.add_argument("--pause", default="/work/runs/",
                   help="pgrep -f pattern of processes to stop meanwhile ('' for none)")
    p.add_argument("--deepq", default=str(Path(sys.executable).parent / "deepq"))
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args()

    runs, paused_count = [], 0
    for _ in range(args.repeats):
        row, cmd, paused_count = _one_run(args)
        runs.append(row)
        print(f"run {len(runs)}: {row['wall_s']:.0f} s", file=sys.stderr)
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
           "commit": git("rev-parse", "HEAD")[:12], "steps": args.steps, "seed": args.seed,
           "median_wall_s": statistics.median(r["wall_s"] for r in runs), "runs": runs,
           "paused": paused_count,
           "command": " ".join(cmd[1:])}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "minatar_1m.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = _markdown(doc)
    (args.out_dir / "minatar_1m.md").write_text(md)
    print(md)


def _one_run(args: argparse.Namespace) -> tuple[dict, list[str], int]:
    """One `deepq train` process, background runs paused around it."""
    with tempfile.TemporaryDirectory(prefix="deepq-minatar-") as tmp, Paused(args.pause) as paused:
        out = Path(tmp) / "run"
        cmd = [args.deepq, "train", "--env", "Breakout-MinAtar", "--preset", "minatar",
               "--seed", str(args.seed), "--total-steps", str(args.steps),
               "--set", "checkpoint_every=0", "--set", "chunk_steps=50000",
               "--no-artifacts", "--quiet", "--out", str(out), "--force"]
        with CpuMeter() as meter:
            subprocess.run(cmd, check=True, capture_output=True)
        summary = json.loads((out / "summary.json").read_text())
        row = {"date": datetime.now(UTC).isoformat(timespec="seconds"), **meter.fields(),
               "train_s": summary["train_seconds"],
               "first_chunk_s": summary["first_chunk_seconds"],
               "last_chunk_steps_per_sec": summary["last_chunk_steps_per_sec"],
               "mean_return_last_100_episodes": _last_returns(out / "metrics.csv")}
    return row, cmd, len(paused.pids)


def _markdown(doc: dict) -> str:
    m, runs = doc["machine"], doc["runs"]
    median = doc["median_wall_s"]
    md = [
        "# MinAtar-Breakout DQN: wall time of 1M steps",
        "",
        f"Measured {doc['date']} by `benchmarks/minatar_1m.py` at commit {doc['commit']}. "
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, no GPU.",
        "",
        f"**Median wall time over {len(runs)} run(s): {median:.0f} s ({median / 60:.1f} min).**",
        "",
        "| run | finished | steps | wall | training loop | compile + first chunk "
        "| last chunk steps/s | other cores busy | mean return, last 100 training episodes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(runs, 1):
        md.append(
            f"| {i} | {r['date'][:16]} | {doc['steps']:,} | {r['wall_s']:.0f} s "
            f"({r['wall_s'] / 60:.1f} min) | {r['train_s']:.0f} s | {r['first_chunk_s']:.1f} s "
            f"| {r['last_chunk_steps_per_sec']:.0f} | {r['other_cores']:.2f} "
            f"| {r['mean_return_last_100_episodes']:.2f} |")
    md += [
        "",
        f"The `minatar` preset (the MinAtar paper's DQN, one update per step), seed "
        f"{doc['seed']}; wall time is the whole `deepq train` process. rejax and CleanRL "
        f"report about 20 minutes for 1M steps on an A100 machine. {doc['paused']} background "
        "process(es) were paused during each run.",
        "",
        f"Command: `deepq {doc['command']}`",
        "",
    ]
    return "\n".join(md)


def _last_returns(metrics_csv: Path, episodes: int = 100) -> float:
    """Mean return of the last `episodes` training episodes (epsilon 0.1 by then)."""
    import csv

    with metrics_csv.open() as f:
        rows = list(csv.DictReader(f))
    tail = [float(r["return"]) for r in rows[-episodes:]]
    return sum(tail) / max(len(tail), 1)


if __name__ == "__main__":
    main()
