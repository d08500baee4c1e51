"""Karpathy's Pong from pixels: how far a REINFORCE run got, next to the post's numbers.

    .venv/bin/python benchmarks/pong_results.py runs/pong
    .venv/bin/python benchmarks/pong_results.py runs/pong-episode --name pong_karpathy_episode

Reads the run's metrics.csv and writes benchmarks/results/NAME.{md,json,png} (NAME:
`--name`, pong_karpathy by default):
the running reward (Karpathy's EMA 0.99 of episode returns) and the mean return with a 95%
t-interval over each block of 500 episodes, with the block's mean episode length and the
share of its games in which the agent scored at least once (both grow as it learns to
return the ball), the env steps and the training time (the sum
over chunks of their env steps / logged steps per second, so pauses between sessions do
not count). The post: the agent beat the built-in AI (running reward above 0) after
~8,000 episodes, three nights on a laptop; a random policy scores about -20.7.
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import stats

from deepq.report import read_metrics, running_reward

HERE = Path(__file__).resolve().parent
BLOCK = 500


def summarize(run: Path) -> dict:
    m = read_metrics(run)
    returns = m["return"]
    running = running_reward(returns)
    # steps_per_sec is logged per chunk (every 100 episodes): chunk time = its steps / rate.
    # A chunk logged below a third of the median rate had its process stopped part of the
    # time (SIGSTOP while a benchmark ran, see atari_throughput.Paused): it counts at the
    # median rate, and the JSON says how many did.
    chunk = (m["episode"] - 1) // 100
    ids = np.unique(chunk)
    steps = np.array([m["length"][chunk == c].sum() for c in ids], float)
    rates = np.array([m["steps_per_sec"][chunk == c][-1] for c in ids], float)
    stopped = rates < np.median(rates) / 3
    seconds = float(np.sum(steps / np.where(stopped, np.median(rates), rates)))
    blocks = []
    for start in range(0, len(returns), BLOCK):
        r = returns[start:start + BLOCK]
        half = stats.t.ppf(0.975, len(r) - 1) * r.std(ddof=1) / np.sqrt(len(r))
        blocks.append({"episodes": [start + 1, start + len(r)], "mean": float(r.mean()),
                       "ci95": [float(r.mean() - half), float(r.mean() + half)],
                       "running_reward_at_end": float(running[start + len(r) - 1]),
                       "mean_length": float(m["length"][start:start + BLOCK].mean()),
                       "scored_share": float(np.mean(r > -21))})
    return {"run": str(run), "episodes": int(len(returns)), "env_steps": int(m["env_step"][-1]),
            "training_hours": seconds / 3600, "running_reward": float(running[-1]),
            "best_running_reward": float(running.max()), "blocks": blocks,
            "chunks_at_median_rate": int(stopped.sum()),
            "measured": datetime.now(UTC).strftime("%Y-%m-%d")}


def plot(run: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = read_metrics(run)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(m["episode"], m["return"], lw=0.5, alpha=0.3, label="episode return")
    ax.plot(m["episode"], running_reward(m["return"]), lw=2, label="running reward (EMA 0.99)")
    ax.axhline(0, color="k", lw=0.8, ls="--", label="beats the built-in AI")
    ax.set_xlabel("episode (a game to 21 points)")
    ax.set_ylabel("return")
    from deepq.rundir import read_config

    standardize = read_config(run).standardize_returns
    ax.set_title(f"KarpathyPong-v0, REINFORCE (karpathy-pong), 1 seed, returns "
                 f"standardised per {standardize}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default="pong_karpathy", help="results file name")
    args = parser.parse_args()
    doc = summarize(args.run)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"{args.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    plot(args.run, results / f"{args.name}.png")
    lines = [f"Karpathy's Pong from pixels, 1 seed, {doc['episodes']:,} episodes, "
             f"{doc['env_steps']:,} env steps, {doc['training_hours']:.2f} h of training "
             f"({doc['measured']}, benchmarks/pong_results.py)", "",
             "| episodes | mean return [95% CI] | running reward at the end "
             "| mean steps per game | games with a point |",
             "|---|---|---|---:|---:|"]
    for b in doc["blocks"]:
        lo, hi = b["ci95"]
        lines.append(f"| {b['episodes'][0]}-{b['episodes'][1]} | {b['mean']:.2f} "
                     f"[{lo:.2f}, {hi:.2f}] | {b['running_reward_at_end']:.2f} "
                     f"| {b['mean_length']:,.0f} | {b['scored_share']:.0%} |")
    (results / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
