"""Pong learned on this CPU: the headline numbers and curves of DQN and PQN runs.

    .venv/bin/python benchmarks/pong_cpu.py RUN [RUN ...]

Each RUN is a deepq run dir on ALE/Pong-v5 (finished, or still training: its numbers so far;
RUN:EVAL_JSON takes the evaluation from `deepq eval RUN --json` of its newest checkpoint).
Rows already in pong_cpu.json for another algo and preset are kept. Writes
benchmarks/results/pong_cpu.{json,md,png}: per run the algo, preset and command, the
frames trained (4 per agent step), the training time, the mean of the last 20 training
episodes, the paper-protocol evaluation (eval.json: epsilon 0.05, 30 episodes of at most 18k
frames, up to 30 no-op starts; written when the run ends) with a 95% t-interval, the
training time at which the mean of 20 consecutive training episodes first reached 0, 10
and 18, and the mean training return per 100k frames.

Training time is summed over chunks from the logged steps per second (a chunk's steps over
its rate), so time between sessions of a resumed run does not count; it includes the
updates, acting and the emulator, not the final evaluation. A chunk during which the run
was stopped (SIGSTOP, while a benchmark had the CPU) is counted at its neighbours' rate;
the JSON says how many were.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import stats

from deepq.drivers.common import chunk_iterations
from deepq.drivers.rollout import rollout_chunk, rollouts
from deepq.errors import UserError
from deepq.presets import config_for
from deepq.report import read_metrics
from deepq.rundir import read_config

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = (0, 10, 18)
WINDOW = 20
FRAMES_PER_STEP = 4  # frame skip 4 in every Atari preset here
BUCKET = 100_000  # frames


def chunk_rates(m: dict, chunk_steps: int) -> tuple[np.ndarray, int]:
    """Steps/s of every chunk (the rate of the chunk an episode ended in is logged with it; a
    chunk in which no episode ended takes the next logged rate), and how many chunks were
    counted at their neighbours' rate: a chunk below half the median of the 7 around it had
    its process stopped part of the time (SIGSTOP while a benchmark measured the CPU alone)."""
    chunk = (m["env_step"].astype(np.int64) - 1) // chunk_steps
    logged = {int(c): float(r) for c, r in zip(chunk, m["steps_per_sec"], strict=True)}
    rates, later = np.zeros(int(chunk.max()) + 1), None
    for c in range(len(rates) - 1, -1, -1):
        later = logged.get(c, later)
        rates[c] = later
    local = np.array([np.median(rates[max(c - 3, 1):c + 4]) for c in range(len(rates))])
    paused = rates < local / 2
    paused[0] = False  # the warm-up chunk acts at random, faster than the rest
    return np.where(paused, local, rates), int(paused.sum())


def training_seconds(m: dict, chunk_steps: int) -> tuple[np.ndarray, int]:
    """Training seconds at each logged episode's end (the chunks before its chunk, then its
    steps into that chunk at the chunk's rate), and the chunks counted at a neighbour rate."""
    steps = m["env_step"].astype(np.int64)
    chunk = (steps - 1) // chunk_steps
    rates, adjusted = chunk_rates(m, chunk_steps)
    before = np.concatenate([[0.0], np.cumsum(chunk_steps / rates)])
    return before[chunk] + (steps - chunk * chunk_steps) / rates[chunk], adjusted


def chunk_env_steps(cfg) -> int:
    """A chunk's env steps (all envs), as the driver sizes it: PQN's are whole rollouts."""
    its = chunk_iterations(cfg)
    if cfg.algo == "pqn":
        its = rollout_chunk(cfg, its, rollouts(cfg) * cfg.rollout_steps)
    return its * cfg.num_envs


def summarize(run: Path, eval_file: Path | None = None) -> dict:
    """One run's row; `eval_file` replaces its eval.json (`deepq eval RUN --json` of a run
    still training, which evaluates its newest checkpoint)."""
    cfg = read_config(run)
    m = read_metrics(run)
    returns = m["return"]
    seconds, adjusted = training_seconds(m, chunk_env_steps(cfg))
    frames = FRAMES_PER_STEP * m["env_step"].astype(np.int64)
    window = np.convolve(returns, np.ones(WINDOW) / WINDOW, mode="valid")  # ends at i+W-1
    crossed = {}
    for level in THRESHOLDS:
        hit = np.flatnonzero(window >= level)
        crossed[str(level)] = None if not hit.size else {
            "train_seconds": round(float(seconds[hit[0] + WINDOW - 1]), 1),
            "frames": int(frames[hit[0] + WINDOW - 1])}
    curve = []
    for b in np.unique(frames // BUCKET):
        r = returns[frames // BUCKET == b]
        curve.append({"frames_to": int((b + 1) * BUCKET), "episodes": int(r.size),
                      "mean_return": round(float(r.mean()), 2)})
    eval_file = eval_file or run / "eval.json"
    evaluation = None
    if eval_file.exists():
        e = json.loads(eval_file.read_text())
        r = np.asarray(e["returns"], float).reshape(-1)
        half = stats.t.ppf(0.975, r.size - 1) * r.std(ddof=1) / np.sqrt(r.size)
        evaluation = {"file": eval_file.name, "episodes": int(r.size), "epsilon": e["epsilon"],
                      "mean": round(float(r.mean()), 2),
                      "ci95": [round(float(r.mean() - half), 2), round(float(r.mean() + half), 2)]}
    summary = json.loads((run / "summary.json").read_text()) if (
        run / "summary.json").exists() else {}
    command = f"deepq train --algo {cfg.algo} --preset {cfg.preset} --env {cfg.env_id}"
    if cfg.total_steps != config_for(cfg.env_id, cfg.preset).total_steps:
        command += f" --total-steps {cfg.total_steps}"
    return {
        "algo": cfg.algo, "preset": cfg.preset, "command": command, "seeds": cfg.seeds,
        "frames": int(frames[-1]), "finished": bool(summary),
        "train_seconds": round(float(seconds[-1]), 1), "chunks_at_neighbour_rate": adjusted,
        "last20_mean": round(float(returns[-WINDOW:].mean()), 2),
        "eval_mean": None if evaluation is None else evaluation["mean"],
        "eval": evaluation, "first_reached": crossed, "episodes": int(returns.size),
        "curve": curve,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "measured": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for row in rows:
        x = [c["frames_to"] / 1e6 for c in row["curve"]]
        ax.plot(x, [c["mean_return"] for c in row["curve"]], marker=".",
                label=f"{row['algo']} ({row['preset']}), {row['train_seconds'] / 60:.0f} min")
    ax.axhline(18, color="k", lw=0.8, ls="--", label="18")
    ax.set_xlabel("frames (millions)")
    ax.set_ylabel("mean training return per 100k frames")
    ax.set_title("ALE/Pong-v5 on a 2-core CPU, 1 seed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN, or RUN:EVAL_JSON to take the evaluation "
                        "from a saved `deepq eval RUN --json` of a run still training")
    args = parser.parse_args()
    pairs = [(Path(run), Path(ev) if ev else None)
             for run, _, ev in (arg.partition(":") for arg in args.runs)]
    missing = [str(ev) for _, ev in pairs if ev is not None and not ev.exists()]
    if missing:
        parser.error(f"no evaluation file {', '.join(missing)}: save one with "
                     "deepq eval RUN --json > FILE")
    try:
        rows = [summarize(run, ev) for run, ev in pairs]
    except UserError as exc:  # a run dir that is missing or damaged, named by the reader
        parser.error(str(exc))
    # Rows of other (algo, preset) pairs already on record stay: their run dirs may be gone.
    path, new = RESULTS / "pong_cpu.json", {(r["algo"], r["preset"]) for r in rows}
    kept = [r for r in json.loads(path.read_text()) if (r["algo"], r["preset"]) not in new] \
        if path.exists() else []
    rows = kept + rows
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, RESULTS / "pong_cpu.png")

    def at(row: dict, level: int) -> str:
        hit = row["first_reached"][str(level)]
        return "not yet" if hit is None else (f"{hit['train_seconds'] / 60:.0f} min, "
                                              f"{hit['frames'] / 1e6:.2f}M frames")

    lines = [f"# Pong on this CPU ({rows[0]['machine']}; benchmarks/pong_cpu.py)", "",
             "| algo | preset | frames | training | last 20 | eval (30, eps 0.05) [95% CI] "
             "| reached 0 | reached 10 | reached 18 |", "|---|---|---:|---:|---:|---|---|---|---|"]
    for r in rows:
        ev = "not yet" if r["eval"] is None else (
            f"{r['eval']['mean']:.1f} [{r['eval']['ci95'][0]:.1f}, {r['eval']['ci95'][1]:.1f}]")
        lines.append(f"| {r['algo']} | {r['preset']} | {r['frames'] / 1e6:.2f}M "
                     f"| {r['train_seconds'] / 60:.0f} min{'' if r['finished'] else ' (running)'} "
                     f"| {r['last20_mean']:.1f} | {ev} | {at(r, 0)} | {at(r, 10)} | "
                     f"{at(r, 18)} |")
    lines += ["", "Reached: the training time and frames at which the mean of 20 consecutive "
              "training episodes first reached the level. Commands:", ""]
    lines += [f"    {r['command']}" for r in rows]
    lines += ["", *(f"{r['algo']}'s evaluation is `deepq eval --json` of its newest checkpoint "
                    f"while it trained on: benchmarks/results/{r['eval']['file']}."
                    for r in rows if r["eval"] and r["eval"].get("file", "eval.json")
                    != "eval.json")]
    (RESULTS / "pong_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
