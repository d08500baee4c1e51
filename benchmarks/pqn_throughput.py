"""PQN training throughput on Pong: deepq against CleanRL's pqn_atari_envpool.py, one CPU box.

Run with deepq's venv after ``benchmarks/peers_setup.sh CLEANRL_CHECKOUT`` (it makes
``cleanrl-pqn-venv`` and extracts ``cleanrl/pqn_atari_envpool.py`` outside the repo):

    .venv/bin/python benchmarks/pqn_throughput.py --repeats 3 --iterations 8

Both sides run PQN (Gallici et al. 2024) with the pqn-atari preset's shape: 128 envs x 32
steps per rollout, 2 epochs x 32 minibatches of 128, the Nature CNN with LayerNorm, RAdam,
Q(lambda) targets. deepq: `deepq train --algo pqn --preset pqn-atari` on
ALE/Pong-v5 (ale_py.AtariVectorEnv); CleanRL: its script on envpool's Pong-v5 with
`--num-envs 128 --num-steps 32 --update-epochs 2 --num-minibatches 32 --no-cuda`, torch
on the CPU. Measured: env steps per second (frames / 4) over the rollouts after the first
(which compiles, or warms up torch): deepq runs one rollout per chunk, and summary.json
gives the training time and the first chunk's; CleanRL prints a line per rollout, each
timestamped on arrival.

CleanRL's script calls envpool with the gym API of envpool < 0.8 (reset returns the
observations, step four values); PyPI has envpool >= 0.8 only for this Python, whose gym
API returns gymnasium's five, and gymnasium's spaces. SHIM adapts the returned env
(terminated or truncated -> done; gym's spaces) and runs the script unchanged. While
measuring, processes matching --pause (a long training run sharing the box) are stopped
with SIGSTOP, as in atari_throughput.py.
Writes benchmarks/results/pqn_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from atari_throughput import CpuMeter, Paused, git, machine, train_timed, versions

HERE = Path(__file__).resolve().parent
PEERS = Path(os.environ.get("DEEPQ_PEERS_DIR", "/tmp/deepq-peers"))
ROLLOUT = 128 * 32  # env steps per rollout (iteration)
SKIP = 1  # rollouts not timed: compile / warm-up

SHIM = """\
import runpy, sys
import envpool
import gym
import numpy as np

make = envpool.make


class FourValueStep:
    def __init__(self, env):
        self.env = env
        self.action_space = gym.spaces.Discrete(env.action_space.n)
        o = env.observation_space
        self.observation_space = gym.spaces.Box(o.low, o.high, o.shape, o.dtype)

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, **kwargs):
        return self.env.reset(**kwargs)[0]

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["terminated"] = info["terminated"].astype(np.int32)
        return obs, reward, terminated | truncated, info


envpool.make = lambda *args, **kwargs: FourValueStep(make(*args, **kwargs))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def timed_rate(stamps: list[float]) -> float:
    """Env steps/s between the ends of rollout SKIP and the last one (stamps: arrival time
    of each rollout's line)."""
    if len(stamps) <= SKIP:
        raise RuntimeError(f"only {len(stamps)} rollouts logged; raise --iterations")
    return (len(stamps) - SKIP) * ROLLOUT / (stamps[-1] - stamps[SKIP - 1])


def run_deepq(args: argparse.Namespace, rep: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="deepq-pqn-") as tmp:
        out = Path(tmp) / "run"
        cmd = [args.deepq, "train", "--algo", "pqn", "--preset", "pqn-atari", "--env",
               "ALE/Pong-v5", "--seed", str(rep), "--total-steps",
               str(args.iterations * ROLLOUT), "--set", f"chunk_steps={ROLLOUT}", "--set",
               "checkpoint_every=0", "--set", "qtrace_states=0", "--no-artifacts", "--quiet",
               "--out", str(out), "--force"]
        summary, meter = train_timed(cmd, out, args.timeout)
    # the chunks after the first (one rollout each): training time less the first chunk's
    timed = args.iterations - SKIP
    rate = timed * ROLLOUT / (summary["train_seconds"] - summary["first_chunk_seconds"])
    return {"tool": "deepq", "seed": rep, "steps_per_sec": round(rate, 1),
            "rollouts_timed": timed, **meter.fields(), "command": " ".join(cmd)}


def run_cleanrl(args: argparse.Namespace, rep: int) -> dict:
    python = args.peers_dir / "cleanrl-pqn-venv" / "bin" / "python"
    script = args.peers_dir / "cleanrl" / "src" / "cleanrl" / "pqn_atari_envpool.py"
    for need in (python, script):
        if not need.exists():
            sys.exit(f"CleanRL PQN peer missing ({need}): run benchmarks/peers_setup.sh "
                     "CLEANRL_CHECKOUT first")
    flags = {"env-id": "Pong-v5", "seed": rep + 1, "num-envs": 128, "num-steps": 32,
             "update-epochs": 2, "num-minibatches": 32, "learning-rate": 2.5e-4,
             "total-timesteps": args.iterations * ROLLOUT}
    cmd = [str(python), "-u", "-c", SHIM, str(script), "--no-cuda",
           *[x for k, v in flags.items() for x in (f"--{k}", str(v))]]
    stamps: list[float] = []  # one "SPS:" line per rollout
    with tempfile.TemporaryDirectory(prefix="cleanrl-pqn-") as tmp:
        with CpuMeter() as meter:
            proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, bufsize=1)
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("SPS:"):
                    stamps.append(time.perf_counter())
            err = proc.stderr.read() if proc.stderr else ""
            rc = proc.wait(timeout=args.timeout)
    if rc != 0:
        raise RuntimeError(f"pqn_atari_envpool.py failed ({rc}):\n{err[-3000:]}")
    return {"tool": "cleanrl", "seed": rep + 1, "steps_per_sec": round(timed_rate(stamps), 1),
            "rollouts_timed": len(stamps) - SKIP, **meter.fields(),
            "command": "python pqn_atari_envpool.py --no-cuda " + " ".join(cmd[6:])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--iterations", type=int, default=8, help="rollouts of 128 x 32 per run")
    p.add_argument("--pause", default="deepq train", help="pgrep -f pattern to SIGSTOP")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--deepq", default=str(Path(sys.executable).parent / "deepq"))
    p.add_argument("--peers-dir", type=Path, default=PEERS)
    args = p.parse_args()
    rows = []
    with Paused(args.pause) as paused:
        for rep in range(args.repeats):
            for runner in (run_deepq, run_cleanrl):
                rows.append(runner(args, rep))
                print(rows[-1], flush=True)
    med = {t: statistics.median(r["steps_per_sec"] for r in rows if r["tool"] == t)
           for t in ("deepq", "cleanrl")}
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
           "versions": {"deepq": versions(str(Path(args.deepq).parent / "python"))
                        | {"commit": git("rev-parse", "HEAD")[:12]},
                        "cleanrl": versions(str(args.peers_dir / "cleanrl-pqn-venv" / "bin"
                                                / "python"))},
           "paused": paused.pids, "median_steps_per_sec": med,
           "ratio_deepq_over_cleanrl": round(med["deepq"] / med["cleanrl"], 2), "runs": rows}
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "pqn_throughput.json").write_text(json.dumps(doc, indent=1) + "\n")
    m = doc["machine"]
    lines = ["# PQN training throughput on Pong: deepq vs CleanRL pqn_atari_envpool.py (CPU)",
             "", f"Measured {doc['date']} by `benchmarks/pqn_throughput.py`: {m['cpu']}, "
             f"{m['cores']} cores, no GPU. 128 envs x 32 steps, 2 epochs x 32 minibatches, "
             f"{args.iterations} rollouts per run, the first {SKIP} not timed; env steps/s "
             "(frames/s = 4x).", "", "| tool | env steps/s per run | median | frames/s |",
             "|---|---|---:|---:|"]
    for tool in ("deepq", "cleanrl"):
        rates = ", ".join(str(r["steps_per_sec"]) for r in rows if r["tool"] == tool)
        lines.append(f"| {tool} | {rates} | {med[tool]:.0f} | {4 * med[tool]:.0f} |")
    lines += ["", f"**Median ratio deepq / CleanRL: {doc['ratio_deepq_over_cleanrl']}x.** "
              f"Paused during the runs: {paused.pids or 'nothing'}.", "",
              "Commands:", ""] + [f"- `{r['command']}`" for r in rows[:2]]
    (out / "pqn_throughput.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
