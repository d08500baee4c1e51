"""The MinAtar results table: our DQN runs next to the MinAtar paper's numbers.

    .venv/bin/python benchmarks/minatar_results.py /work/runs/breakout-v2 /work/runs/minatar-*

For each run directory (one game, several seeds, the `minatar` preset) it reads
metrics.csv and reports, at the frames the run has reached (5M when it is done): every
seed's mean return over its last 100 training episodes (epsilon 0.1, sticky actions on,
as the paper's curves), their mean with a 95% t-interval over seeds, the paper's value
read off its curves (../shared/DESIGN.md) and the training time (the sum over chunks of
steps / logged steps-per-second, so pauses between sessions do not count).
Writes benchmarks/results/minatar.{md,json}.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from scipy import stats

HERE = Path(__file__).resolve().parent
PAPER = {"Asterix": 17, "Breakout": 10, "Freeway": 50, "Seaquest": 20, "SpaceInvaders": 43}


def summarize(run: Path, last: int = 100) -> dict | None:
    cfg = json.loads((run / "config.json").read_text())["config"]
    by_seed: dict[int, list[float]] = defaultdict(list)
    chunk_rate: dict[int, float] = {}
    frames = 0
    with (run / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            by_seed[int(row["seed"])].append(float(row["return"]))
            step = int(row["env_step"])
            frames = max(frames, step)
            chunk_rate[step // cfg["chunk_steps"]] = float(row["steps_per_sec"])
    if not by_seed:  # started, no episode finished yet
        return None
    seeds = sorted(by_seed)
    per_seed = [statistics.fmean(by_seed[s][-last:]) for s in seeds]
    mean = statistics.fmean(per_seed)
    if len(per_seed) > 1:
        half = stats.t.ppf(0.975, len(per_seed) - 1) * stats.sem(per_seed)
    else:
        half = float("nan")
    seconds = sum(cfg["chunk_steps"] * len(seeds) / rate for rate in chunk_rate.values() if rate)
    game = cfg["env_id"].split("-")[0]
    return {"run": str(run), "game": game, "seeds": seeds, "frames": frames,
            "target_frames": cfg["total_steps"], "per_seed": [round(x, 2) for x in per_seed],
            "mean": round(mean, 2), "ci95": [round(mean - half, 2), round(mean + half, 2)],
            "paper": PAPER.get(game), "train_hours": round(seconds / 3600, 2),
            "rmsprop_eps": "inside sqrt" if cfg.get("rmsprop_eps_in_sqrt", True)
            else "outside sqrt",
            "episodes_per_seed": last}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args()
    rows = [row for r in args.runs if (r / "metrics.csv").exists()
            if (row := summarize(r)) is not None]
    lines = [
        "# MinAtar: DQN (`minatar` preset) next to the MinAtar paper",
        "",
        f"Written {datetime.now(UTC).isoformat(timespec='seconds')} by "
        "`benchmarks/minatar_results.py`. Return: mean of each seed's last 100 training "
        "episodes (epsilon 0.1, sticky actions 0.1), then the mean over seeds with a 95% "
        "t-interval. Paper: Young & Tian 2019, read off its DQN curves at 5M frames. "
        "Training time: 2-core CPU, both seeds side by side, one per core. RMSProp eps: "
        "where the run's centered RMSProp adds its 0.01 (the paper's code, PyTorch's "
        "RMSprop: outside the square root).",
        "",
        "| game | RMSProp eps | frames reached | seeds | per seed | mean [95% CI] "
        "| paper at 5M | training time |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['game']} | {r['rmsprop_eps']} | {r['frames']:,} of {r['target_frames']:,} "
            f"| {len(r['seeds'])} | "
            f"{', '.join(map(str, r['per_seed']))} | {r['mean']} [{r['ci95'][0]}, "
            f"{r['ci95'][1]}] | ≈{r['paper']} | {r['train_hours']} h |")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "minatar.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out_dir / "minatar.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
