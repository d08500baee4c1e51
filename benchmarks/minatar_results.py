"""The MinAtar results table: our DQN runs next to the MinAtar paper's numbers.

    .venv/bin/python benchmarks/minatar_results.py /work/runs/breakout-v2 /work/runs/minatar-*

For each run directory (one game, several seeds, the `minatar` preset) it reads
metrics.csv and reports, at the frames the run has reached (5M when it is done): every
seed's mean return over its last 100 training episodes (epsilon 0.1, sticky actions on,
as the paper's curves), their mean with a 95% t-interval over seeds, the paper's values
and the training time (the sum over chunks of steps / logged steps-per-second, so pauses
between sessions do not count). Writes benchmarks/results/minatar.{md,json}; with --plot
also minatar_curves.png, one panel per game: each run's training return per 250k frames
(mean of its seeds, the band spanning them) beside the paper's two values.

Runs joined with a comma (`RUN_A,RUN_B`) are one row: the same config trained on other
seeds (`deepq train ... --seed 2 --seeds 2`). Their seeds are pooled, and their training
times add up.

The paper's values come from two figures of the MinAtar repository (README "Results",
img/sensitivity_curves.gif and img/learning_curves.gif; 30 runs each). The sensitivity
figure gives DQN's average return over its final 100 episodes for each step size
2^-14 ... 2^-7; the learning curves show each game at its best step size, which is why
they differ from the code's default STEP_SIZE = 2.5e-4 (about 2^-12). Both were read off
the plots by eye, to about +-0.3 (Freeway +-1).
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import argparse
import json
import math
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import numpy as np
from scipy import stats

from deepq.report import read_metrics

HERE = Path(__file__).resolve().parent
# Learning curves at 5M frames (each game at its best step size).
PAPER = {"Asterix": 17, "Breakout": 10, "Freeway": 50, "Seaquest": 20, "SpaceInvaders": 43}
# Sensitivity curves: log2(step size) -> final-100-episode return of DQN.
PAPER_BY_STEP = {
    "Breakout": {-14: 8.3, -13: 9.1, -12: 8.9, -11: 9.6, -10: 9.7, -9: 10.3, -8: 7.4, -7: 5.2},
    "Asterix": {-14: 14.3, -13: 16.7, -12: 11.9, -11: 10.7, -10: 8.2},
    "Seaquest": {-14: 9.2, -13: 19.4, -12: 16.5, -11: 13.2, -10: 5.3},
    "Freeway": {-14: 47.7, -13: 47.5, -12: 49.2, -11: 49.8, -10: 46.5, -9: 43.2},
    "SpaceInvaders": {-14: 41.6, -13: 42.0, -12: 45.6, -11: 44.2, -10: 34.0},
}


def paper_at(game: str, learning_rate: float) -> tuple[str, float | None]:
    """The step size as a power of two (2.5e-4 counts as 2^-12) and the paper's DQN there."""
    exponent = math.log2(learning_rate)
    if abs(exponent - round(exponent)) > 0.05:
        return f"{learning_rate:g}", None
    power = f"2^{round(exponent)}"
    label = power if exponent == round(exponent) else f"{learning_rate:g} (≈{power})"
    return label, PAPER_BY_STEP.get(game, {}).get(round(exponent))


def summarize(runs: list[Path], parts: list[dict[str, np.ndarray]],
              last: int = 100) -> dict | None:
    """The table row of runs of one config (on different seeds), from their configs and
    metrics (report.read_metrics, one per run)."""
    cfg = json.loads((runs[0] / "config.json").read_text())["config"]
    if not all(len(m["seed"]) for m in parts):  # started, no episode finished yet
        return None
    frames = min(int(m["env_step"].max()) for m in parts)
    seconds = 0.0
    last_mean: dict[int, float] = {}  # seed -> mean of its last `last` episodes
    for m in parts:  # their seeds differ (check_joinable)
        seed = m["seed"].astype(int)
        run_seeds = sorted(set(seed.tolist()))
        last_mean |= {s: statistics.fmean(m["return"][seed == s][-last:].tolist())
                      for s in run_seeds}
        # Every row of a chunk carries that chunk's steps per second.
        chunk_rate = dict(zip((m["env_step"].astype(int) // cfg["chunk_steps"]).tolist(),
                              m["steps_per_sec"].tolist()))
        seconds += sum(cfg["chunk_steps"] * len(run_seeds) / rate
                       for rate in chunk_rate.values() if rate)
    seeds = sorted(last_mean)
    per_seed = [last_mean[s] for s in seeds]
    mean = statistics.fmean(per_seed)
    if len(per_seed) > 1:
        half = stats.t.ppf(0.975, len(per_seed) - 1) * stats.sem(per_seed)
    else:
        half = float("nan")
    game = cfg["env_id"].split("-")[0]
    step_size, paper_same_step = paper_at(game, cfg["learning_rate"])
    return {"run": ",".join(map(str, runs)), "game": game, "seeds": seeds, "frames": frames,
            "target_frames": cfg["total_steps"], "per_seed": [round(x, 2) for x in per_seed],
            "mean": round(mean, 2), "ci95": [round(mean - half, 2), round(mean + half, 2)],
            "paper": PAPER.get(game), "learning_rate": cfg["learning_rate"],
            "step_size": step_size, "paper_same_step_size": paper_same_step,
            "train_hours": round(seconds / 3600, 2),
            "rmsprop_eps": "inside sqrt" if cfg.get("rmsprop_eps_in_sqrt", True)
            else "outside sqrt",
            "episodes_per_seed": last}


def pooled(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The metrics of several runs as one table (their seeds differ)."""
    return {k: np.concatenate([m[k] for m in parts]) for k in parts[0]}


def check_joinable(runs: list[Path], parts: list[dict[str, np.ndarray]]) -> str | None:
    """Why runs joined with a comma cannot be one row, or None when they can."""
    def config(run: Path) -> dict:
        cfg = json.loads((run / "config.json").read_text())["config"]
        return {k: v for k, v in cfg.items() if k not in ("seed", "num_seeds")}
    first = config(runs[0])
    for run in runs[1:]:
        differ = sorted(k for k, v in config(run).items() if first.get(k) != v)
        if differ:
            return (f"{runs[0]} and {run} differ in {', '.join(differ)}: "
                    "join only runs of one config")
    seen: set[int] = set()
    for run, m in zip(runs, parts):
        seeds = set(m["seed"].astype(int).tolist())
        if seeds & seen:
            return f"seed {min(seeds & seen)} appears twice ({run}): join runs of other seeds"
        seen |= seeds
    return None


def binned_returns(metrics: dict[str, np.ndarray],
                   width: int = 250_000) -> tuple[list[int], list[list[float]]]:
    """Bin ends (frames) and, per seed, the mean training return of each `width`-frame bin."""
    seed = metrics["seed"].astype(int)
    bin_of = metrics["env_step"].astype(int) // width
    seeds = sorted(set(seed.tolist()))
    # Only bins every seed has reached; a bin still filling counts from its episodes so far.
    bins = sorted(set.intersection(*(set(bin_of[seed == s].tolist()) for s in seeds)))
    per_seed = [[float(metrics["return"][(seed == s) & (bin_of == b)].mean()) for b in bins]
                for s in seeds]
    return [(b + 1) * width for b in bins], per_seed


def plot_curves(rows: list[dict], metrics: dict[str, dict[str, np.ndarray]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = list(dict.fromkeys(r["game"] for r in rows))
    cols = min(3, len(games))
    nrows = -(-len(games) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(games):]:
        ax.set_visible(False)
    for ax, game in zip(axes.flat, games):
        for r in (r for r in rows if r["game"] == game):
            ends, per_seed = binned_returns(metrics[r["run"]])
            x = [e / 1e6 for e in ends]
            mean = [statistics.fmean(v) for v in zip(*per_seed)]
            line, = ax.plot(x, mean, label=f"ours, {r['step_size']} ({len(per_seed)} seeds)")
            ax.fill_between(x, [min(v) for v in zip(*per_seed)], [max(v) for v in zip(*per_seed)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
            if r["paper_same_step_size"] is not None:
                ax.axhline(r["paper_same_step_size"], color=line.get_color(), linestyle=":",
                           label=f"paper at {r['step_size']}: ≈{r['paper_same_step_size']}")
        ax.axhline(PAPER[game], color="black", linestyle="--",
                   label=f"paper's curve at 5M: ≈{PAPER[game]}")
        ax.set_title(f"{game}-MinAtar")
        ax.set_xlabel("frames (M)")
        ax.set_xlim(0, 5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for row in axes:
        row[0].set_ylabel("training return per 250k frames")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def fail(message: str) -> NoReturn:
    print(f"minatar_results.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run directories; RUN_A,RUN_B pools their seeds")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--plot", action="store_true", help="also write minatar_curves.png")
    args = p.parse_args()
    groups = [[Path(r) for r in arg.split(",")] for arg in args.runs]
    missing = [str(r) for runs in groups for r in runs if not (r / "metrics.csv").exists()]
    if missing:  # before anything is written: the tables on disk stay as they are
        fail(f"no metrics.csv in {', '.join(missing)}: pass run directories of deepq train")
    parts = {",".join(map(str, runs)): (runs, [read_metrics(r) for r in runs])
             for runs in groups}  # the row's "run" -> its run dirs and their metrics
    for runs, metrics_of_runs in parts.values():
        if (problem := check_joinable(runs, metrics_of_runs)) is not None:
            fail(problem)
    rows = [row for runs, metrics_of_runs in parts.values()
            if (row := summarize(runs, metrics_of_runs)) is not None]
    metrics = {key: pooled(m) for key, (_, m) in parts.items()}
    if not rows:
        fail("no run has finished an episode yet: nothing to tabulate")
    lines = [
        "# MinAtar: DQN (`minatar` preset) next to the MinAtar paper",
        "",
        f"Written {datetime.now(UTC).isoformat(timespec='seconds')} by "
        "`benchmarks/minatar_results.py`. Return: mean of each seed's last 100 training "
        "episodes (epsilon 0.1, sticky actions 0.1), then the mean over seeds with a 95% "
        "t-interval. Paper (Young & Tian 2019, 30 runs, read off the MinAtar repository's "
        "figures): DQN's final-100-episode return at the run's step size (sensitivity "
        "curves), and its learning curve at 5M frames, which shows each game at its best "
        "step size (Breakout 2^-9, Asterix and Seaquest 2^-13, Freeway 2^-11, Space "
        "Invaders 2^-12; the code's default 2.5e-4 is about 2^-12). "
        "Training time: 2-core CPU, two seeds side by side, one per core (runs pooled "
        "from several directories: the sum of their times). RMSProp eps: "
        "where the run's centered RMSProp adds its 0.01 (the paper's code, PyTorch's "
        "RMSprop: outside the square root).",
        "",
        "| game | RMSProp eps | step size | frames reached | seeds | per seed | mean [95% CI] "
        "| paper, same step size | paper's curve at 5M | training time |",
        "|---|---|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        paper_same = "-" if r["paper_same_step_size"] is None else f"≈{r['paper_same_step_size']}"
        lines.append(
            f"| {r['game']} | {r['rmsprop_eps']} | {r['step_size']} "
            f"| {r['frames']:,} of {r['target_frames']:,} | {len(r['seeds'])} | "
            f"{', '.join(map(str, r['per_seed']))} | {r['mean']} [{r['ci95'][0]}, "
            f"{r['ci95'][1]}] | {paper_same} | ≈{r['paper']} | {r['train_hours']} h |")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "minatar.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out_dir / "minatar.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.plot:
        print("wrote", plot_curves(rows, metrics, args.out_dir / "minatar_curves.png"))


if __name__ == "__main__":
    main()
