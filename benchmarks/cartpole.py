"""CartPole-v1 benchmark: deepq against SB3 DQN and CleanRL dqn.py.

Run with deepq's venv after ``benchmarks/peers_setup.sh`` (see benchmarks/README.md):

    .venv/bin/python benchmarks/cartpole.py [--peers sb3,cleanrl,deepq] [--seeds N]

Each training run is its own subprocess; ``wall_s`` is the wall time of that whole
process (interpreter start, imports and JIT compile included) minus the eval time
a peer reports when it evaluates in the same process. Every tool is then scored
on 100 greedy episodes of Gymnasium CartPole-v1 per seed. Results are merged into
benchmarks/results/cartpole.{json,md}: rows of the tools run now replace older
rows with the same tool and settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from atari_throughput import HERE, PEERS

SOLVED = 475.0
EPISODES = 100
DEFAULT_SEEDS = {"sb3": 5, "cleanrl": 3, "deepq": 10}
SB3_SETTINGS = "rl-zoo dqn.yml CartPole (256x256, lr 2.3e-3, train_freq 256 x 128 grad steps)"
CLEANRL_SETTINGS = "dqn.py defaults (120x84, lr 2.5e-4, buffer 1e4, train every 10 steps)"
Row = dict[str, Any]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run ``cmd``; return its stdout and wall seconds. Stderr passes through."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}")
    return proc.stdout, wall


def last_json(stdout: str) -> dict[str, Any]:
    """The last stdout line that is a JSON object."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output:\n{stdout[-2000:]}")


def peer_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    if threads > 0:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return env


def run_peer(tool: str, cmd: list[str], settings: str, seed: int, threads: int) -> Row:
    """One peer process: train then eval; its reported eval time is taken off the wall."""
    stdout, wall = timed(cmd, peer_env(threads))
    out = last_json(stdout)
    settings += f", torch {threads} thread(s)" if threads else ", torch default threads"
    return {"tool": tool, "settings": settings, "steps": out["steps"], "seeds": [seed],
            "wall_s": round(wall - out["eval_s"], 2), "peer_train_s": out["train_s"],
            "eval_means": [out["eval_mean"]]}


def run_sb3(seed: int, args: argparse.Namespace) -> Row:
    cmd = [str(args.peers_dir / "sb3-venv/bin/python"), str(HERE / "peer_sb3_cartpole.py"),
           "--seed", str(seed), "--episodes", str(EPISODES)]
    return run_peer("sb3", cmd, SB3_SETTINGS, seed, args.torch_threads)


def run_cleanrl(seed: int, args: argparse.Namespace) -> Row:
    cmd = [str(args.peers_dir / "cleanrl-venv/bin/python"), str(HERE / "peer_cleanrl_cartpole.py"),
           "--seed", str(seed), "--total-timesteps", str(args.cleanrl_steps),
           "--episodes", str(EPISODES), "--src", str(args.peers_dir / "cleanrl/src")]
    return run_peer("cleanrl", cmd, CLEANRL_SETTINGS, seed, args.torch_threads)


def run_deepq(train_flags: list[str], seeds: list[int], args: argparse.Namespace) -> Row:
    """Train in one ``deepq train`` process (timed), then ``deepq eval`` (not timed)."""
    preset = ["--preset", args.deepq_preset] if args.deepq_preset else []
    with tempfile.TemporaryDirectory(prefix="deepq-bench-") as tmp:
        run_dir = Path(tmp) / "run"
        _, wall = timed([args.deepq, "train", "--env", "CartPole-v1", *train_flags, *preset,
                         "--out", str(run_dir), "--force", "--quiet", "--no-artifacts"])
        stdout, _ = timed([args.deepq, "eval", str(run_dir), "--episodes", str(EPISODES), "--json"])
        config = json.loads((run_dir / "config.json").read_text())
    result = last_json(stdout)
    means = result.get("per_seed_mean") or [result["mean"]]
    mode = f"{len(seeds)} seeds in 1 process" if len(seeds) > 1 else "1 seed per process"
    return {"tool": "deepq", "settings": f"preset {config.get('preset')}, {mode}",
            "steps": config["config"]["total_steps"], "seeds": seeds, "wall_s": round(wall, 2),
            "eval_means": means, "deepq_version": config.get("deepq_version")}


def one_seed(tool: str, seed: int, args: argparse.Namespace) -> Row:
    if tool == "sb3":
        return run_sb3(seed, args)
    if tool == "cleanrl":
        return run_cleanrl(seed, args)
    return run_deepq(["--seed", str(seed)], [seed], args)


def run_tool(tool: str, args: argparse.Namespace) -> list[Row]:
    n = args.seeds or DEFAULT_SEEDS[tool]
    first = 1 if tool == "cleanrl" else 0  # each tool's own default first seed
    jobs = [partial(one_seed, tool, seed, args) for seed in range(first, first + n)]
    if tool == "deepq" and args.deepq_multi:
        m = args.deepq_multi
        jobs.append(partial(run_deepq, ["--seeds", str(m)], list(range(m)), args))
    rows = []
    for job in jobs:
        load = os.getloadavg()[0]  # a busy machine inflates wall times: keep the evidence
        rows.append(job() | {"load1_before": round(load, 2)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines()
              if ln.startswith("model name")]
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"nproc": int(nproc or os.cpu_count() or 0),
            "cpu": models[0] if models else platform.processor(),
            "python": platform.python_version()}


def summarize(rows: list[Row]) -> list[Row]:
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for row in rows:
        groups.setdefault((row["tool"], row["settings"], row["steps"]), []).append(row)
    table = []
    for (tool, settings, steps), group in groups.items():
        walls = [r["wall_s"] for r in group]
        evals = [m for r in group for m in r["eval_means"]]
        table.append({"tool": tool, "settings": settings, "steps": steps, "seeds": len(evals),
                      "wall_median": statistics.median(walls), "wall_min": min(walls),
                      "wall_max": max(walls), "solved": sum(m >= SOLVED for m in evals),
                      "eval_mean": statistics.fmean(evals), "date": max(r["date"] for r in group),
                      "load": max(r.get("load1_before", float("nan")) for r in group)})
    return table


def markdown(rows: list[Row], info: dict[str, Any]) -> str:
    lines = [
        "# CartPole-v1 benchmark", "",
        f"Machine: {info['nproc']} CPUs (`nproc`), {info['cpu']}, Python {info['python']}. "
        f"Last run {info['date']}. Generated by `benchmarks/cartpole.py`; "
        "raw rows in `cartpole.json`.", "",
        f"Wall s: the whole training process (imports and JIT compile included, eval excluded), "
        f"one process per seed unless stated. Solved: mean return over {EPISODES} greedy episodes "
        f"of Gymnasium CartPole-v1 >= {SOLVED:g}. Max load: the highest 1-minute load average "
        f"seen just before a run; above ~{info['nproc']} the machine was shared and "
        "wall times are inflated.", "",
        "| tool | settings | budget steps | seeds | median wall s (min–max) | seeds solved "
        "| mean eval return | max load | date |",
        "|---|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for t in summarize(rows):
        lines.append(f"| {t['tool']} | {t['settings']} | {t['steps']:,} | {t['seeds']} "
                     f"| {t['wall_median']:.1f} ({t['wall_min']:.1f}–{t['wall_max']:.1f}) "
                     f"| {t['solved']}/{t['seeds']} | {t['eval_mean']:.1f} | {t['load']:.1f} "
                     f"| {t['date'][:10]} |")
    return "\n".join(lines) + "\n"


def save(new: list[Row], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "cartpole.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    replaced = {(r["tool"], r["settings"], r["steps"]) for r in new}
    rows = [r for r in old if (r["tool"], r["settings"], r["steps"]) not in replaced] + new
    info = machine() | {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")
    (out_dir / "cartpole.md").write_text(markdown(rows, info))
    print(markdown(rows, info))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers", default="sb3,cleanrl,deepq", help="comma-separated subset")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per tool (default: sb3 5, cleanrl 3, deepq 10)")
    p.add_argument("--cleanrl-steps", type=int, default=500_000, help="dqn.py --total-timesteps")
    p.add_argument("--deepq-multi", type=int, default=16,
                   help="also train this many deepq seeds in one process (0: skip)")
    p.add_argument("--deepq-preset", default=None, help="deepq train --preset (default: env's own)")
    p.add_argument("--deepq", default=str(Path(sys.executable).parent / "deepq"), help="deepq CLI")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="OMP/MKL threads for the torch peers (0: torch's default)")
    p.add_argument("--peers-dir", type=Path, default=PEERS, help="made by peers_setup.sh")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    tools = [t for t in args.peers.split(",") if t]
    unknown = set(tools) - set(DEFAULT_SEEDS)
    if unknown:
        sys.exit(f"unknown --peers {sorted(unknown)}; choose from {sorted(DEFAULT_SEEDS)}")
    for tool in tools:  # saved per tool, so a crash later keeps what is done
        date = datetime.now(UTC).isoformat(timespec="seconds")
        save([row | {"date": date} for row in run_tool(tool, args)], args.out_dir)


if __name__ == "__main__":
    main()
