"""PQN on the five MinAtar games beside DQN: trains (or resumes) each game, then the table.

    .venv/bin/python benchmarks/pqn_minatar.py --runs /work/runs      # trains, resumable
    .venv/bin/python benchmarks/pqn_minatar.py --runs /work/runs --table-only

Each game trains `deepq train --preset pqn-minatar --env <Game>-MinAtar --seeds 6` (six
seeds vmapped in one process, three on each core of a 2-core CPU: five would not split
evenly and leave the second core mostly idle; 10M frames each: MinAtar has no frame skip,
so a frame is an agent step) into RUNS/pqn-<Game>. A run that stopped part-way is resumed,
a finished one is skipped, and the table is rewritten after every game, so the games can
finish over several sessions. Writes benchmarks/results/pqn_minatar.{md,json}.

Return: each seed's mean over its last 100 training episodes (epsilon 0.05 at the end of
PQN's schedule), then the mean over seeds with a 95% t-interval, as in minatar.md. Beside it:
the MinAtar paper's DQN (Young & Tian 2019, its learning curves at 5M frames) and deepq's own
DQN rows from benchmarks/results/minatar.json (the `minatar` preset, 5M frames). The two are
not like for like: pqn-minatar follows purejaxql's config (no sticky actions, 10M frames),
the DQN rows the MinAtar paper's (sticky actions 0.1, 5M frames).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from minatar_results import summarize

from deepq.report import read_metrics

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GAMES = ["Breakout", "Asterix", "Freeway", "Seaquest", "SpaceInvaders"]


def fail(message: str) -> NoReturn:
    print(f"pqn_minatar.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def train(run: Path, game: str, seeds: int) -> None:
    """Train the game into `run`, resuming a run that stopped part-way."""
    if (run / "summary.json").exists():
        return
    if (run / "config.json").exists():
        args = ["--resume", str(run)]
    else:
        args = ["--preset", "pqn-minatar", "--env", f"{game}-MinAtar", "--seeds", str(seeds),
                "--out", str(run)]
    cmd = [sys.executable, "-m", "deepq", "train", *args]
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        fail(f"deepq train on {game} stopped; run this script again to resume it")


def row(run: Path) -> dict | None:
    """The table row of one game's run: minatar_results' per-seed means of the last 100
    training episodes with their t-interval, and the run's own training time."""
    if not (run / "metrics.csv").exists():
        return None
    stats_row = summarize([run], [read_metrics(run)])
    if stats_row is None:  # started, no episode finished yet
        return None
    summary = run / "summary.json"
    done = summary.exists()
    seconds = json.loads(summary.read_text())["train_seconds"] if done else None
    keep = ("game", "run", "seeds", "frames", "target_frames", "per_seed", "mean", "ci95",
            "episodes_per_seed")
    return {**{k: stats_row[k] for k in keep}, "finished": done,
            "train_minutes": None if seconds is None else round(seconds / 60, 1),
            "paper_dqn_5m": stats_row["paper"]}


def dqn_rows() -> dict[str, dict]:
    """deepq's DQN at the code's default step size 2.5e-4 (minatar.json), by game."""
    path = HERE / "results" / "minatar.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    return {r["game"]: r for r in rows if abs(r["learning_rate"] - 2.5e-4) < 1e-9}


def write_table(rows: list[dict], out_dir: Path) -> str:
    dqn = dqn_rows()
    lines = [
        "# MinAtar: PQN (`pqn-minatar`) beside DQN",
        "",
        f"Written {datetime.now(UTC).isoformat(timespec='seconds')} by "
        "`benchmarks/pqn_minatar.py`. PQN: `deepq train --preset pqn-minatar --env "
        "<Game>-MinAtar --seeds 6`, six seeds vmapped in one process on a 2-core CPU, 10M "
        "frames each, no sticky actions (purejaxql's config). Return: mean of each seed's "
        "last 100 training episodes (epsilon 0.05), then the mean over seeds with a 95% "
        "t-interval. DQN, deepq: the `minatar` preset at 5M frames, sticky actions 0.1, "
        "step size 2.5e-4 (minatar.md). DQN, paper: Young & Tian 2019's learning curves at "
        "5M frames, read off the MinAtar repository's figure (30 runs). Training time: the "
        "run's own `train_seconds`, all six seeds together.",
        "",
        "| game | frames reached | seeds | PQN per seed | PQN mean [95% CI] "
        "| DQN, deepq [95% CI] | DQN, paper | PQN training time |",
        "|---|---:|---:|---|---|---|---:|---:|",
    ]
    for r in rows:
        d = dqn.get(r["game"])
        ours = "-" if d is None else f"{d['mean']} [{d['ci95'][0]}, {d['ci95'][1]}] " \
                                     f"({len(d['seeds'])} seeds)"
        took = "running" if r["train_minutes"] is None else f"{r['train_minutes']} min"
        lines.append(
            f"| {r['game']} | {r['frames']:,} of {r['target_frames']:,} | {len(r['seeds'])} "
            f"| {', '.join(map(str, r['per_seed']))} | {r['mean']} [{r['ci95'][0]}, "
            f"{r['ci95'][1]}] | {ours} | ≈{r['paper_dqn_5m']} | {took} |")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pqn_minatar.json").write_text(json.dumps(rows, indent=1) + "\n")
    text = "\n".join(lines) + "\n"
    (out_dir / "pqn_minatar.md").write_text(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="where the run dirs go")
    p.add_argument("--games", nargs="+", default=GAMES, choices=GAMES)
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--table-only", action="store_true", help="only tabulate what is there")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args()
    if args.seeds < 2:
        fail(f"--seeds must be at least 2 for an interval over seeds, got {args.seeds}")
    runs = {g: args.runs / f"pqn-{g}" for g in args.games}

    def tabulate() -> None:
        rows = [r for r in map(row, runs.values()) if r is not None]
        if not rows:
            fail(f"no run under {args.runs} has finished an episode: run without "
                 "--table-only to train them")
        print(write_table(rows, args.out_dir), flush=True)

    for game, run in runs.items():
        if not args.table_only:
            train(run, game, args.seeds)
            tabulate()  # after every game: the finished ones are on record
    if args.table_only:
        tabulate()


if __name__ == "__main__":
    main()
