"""Atari training throughput: deepq against CleanRL's dqn_atari_jax.py on Pong, one CPU box.

Run with deepq's venv after ``benchmarks/peers_setup.sh CLEANRL_CHECKOUT`` (it makes
``cleanrl-atari-venv`` and extracts ``cleanrl/dqn_atari_jax.py`` outside the repo):

    .venv/bin/python benchmarks/atari_throughput.py --peers deepq,cleanrl --repeats 3 --steps 4000

Both sides train DQN on Pong with the Nature preprocessing (84x84 gray, skip 4 with a max
over the last 2 frames, stack 4, 30 no-op starts, life loss terminal, clipped rewards), the
Nature network, batch 32, an update every 4 steps, sticky actions off. Training starts
after ``--learning-starts`` steps and epsilon reaches 0.1 there, so the timed part is the
steady state of training (epsilon-greedy at 0.1, one update per 4 steps).

Measured: agent steps/s over the last ``--window`` steps of each run (default: the second
half), after the warm-up and the JIT compile of the update. deepq: its run is split into
chunks of ``--window`` steps and summary.json's ``last_chunk_steps_per_sec`` is the last
one. CleanRL: dqn_atari_jax.py prints ``SPS:`` at every multiple of 100 steps once training
runs; each line is timestamped on arrival, so the window's rate is the step difference over
the time difference between the lines at its two ends.

Repeats alternate between the tools. A process matching ``--pause`` (the long
``deepq train --resume`` run sharing the box) is stopped with SIGSTOP for the whole
measurement and always continued with SIGCONT at the end, also on errors and Ctrl-C.
The CPU time used by everything else during each run is recorded (``other_cores``).
Writes benchmarks/results/atari_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = Path(os.environ.get("DEEPQ_PEERS_DIR", "/tmp/deepq-peers"))
TOOLS = ("deepq", "cleanrl")
SETUP_HINT = "run benchmarks/peers_setup.sh CLEANRL_CHECKOUT first (see benchmarks/README.md)"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "gymnasium", "ale-py")
Row = dict[str, Any]

# Runs CleanRL's script unchanged. ale-py >= 0.11 registers its gymnasium ids only when its
# vector env imports, which needs gymnasium >= 1.1; dqn_atari_jax.py needs gymnasium 0.29
# (GrayScaleObservation, FrameStack, final_observation). So register the v4 ids by hand, and
# give numpy 2 the np.bool8 alias that gymnasium 0.29's env checker still uses.
CLEANRL_SHIM = """\
import runpy, sys
import numpy as np
if not hasattr(np, "bool8"):
    np.bool8 = np.bool_
from ale_py.registration import register_v0_v4_envs
register_v0_v4_envs()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# Where the two sides differ, beyond implementation (all no-ops for throughput except where
# said): what each runs with in this benchmark.
DIFFERENCES = [
    ("env id", "ALE/Pong-v5 with the id's defaults replaced (frame skip 1 in the emulator, "
     "skip 4 in preprocessing, sticky 0, minimal actions)", "PongNoFrameskip-v4 (same)"),
    ("preprocessing", "ale_py.AtariVectorEnv in C++ (1 env)",
     "Gymnasium 0.29 wrappers in Python (cv2 resize), SyncVectorEnv of 1"),
    ("FIRE on reset", "no (left to the agent, as in the paper)", "yes (FireResetEnv)"),
    ("optimizer", "RMSProp centered, lr 2.5e-4, decay 0.95, eps 0.01 (Nature)",
     "Adam lr 1e-4 (dqn_atari_jax.py default)"),
    ("loss", "Huber (error clipping, Nature)", "MSE"),
    ("target update", "every 2,500 updates = 10,000 steps (Nature)",
     "--target-network-frequency 10000 (default 1000)"),
    ("epsilon", "1 -> 0.1 over the warm-up (--set epsilon_steps=L; Nature: over 1M)",
     "--start-e 1 --end-e 0.1 --exploration-fraction L/N (default 1 -> 0.01 over 10%)"),
    ("replay", "frame replay: one 84x84 frame per transition, in the jitted learner state",
     "cleanrl_utils ReplayBuffer (SB3's) with optimize_memory_usage, numpy + torch"),
    ("acting", "greedy Q computed every step, fused with the update in one jitted call",
     "Q computed only for the greedy (1 - epsilon) steps"),
    ("replay size", "--buffer-size (1M in Nature: needless for a throughput test)", "same"),
]


# --- the process that shares the box --------------------------------------------------------

class Paused:
    """SIGSTOP the processes matching ``pattern`` while inside; SIGCONT them on exit, on
    errors, on Ctrl-C and on SIGTERM."""

    def __init__(self, pattern: str | None) -> None:
        self.pattern = pattern
        self.pids: list[int] = []

    def __enter__(self) -> Paused:
        if not self.pattern:
            return self
        found = subprocess.run(["pgrep", "-f", self.pattern], capture_output=True, text=True)
        self.pids = [int(p) for p in found.stdout.split() if int(p) != os.getpid()]
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        if self.pids:
            print(f"paused {self.pids} ({self.pattern!r}) until the end", file=sys.stderr)
            time.sleep(2)  # let the load it caused drain
        return self

    def __exit__(self, *exc: object) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if self.pids:
            print(f"continued {self.pids}", file=sys.stderr)


# --- CPU accounting ---------------------------------------------------------------------------

def busy_seconds() -> float:
    """CPU seconds the whole box has spent busy since boot (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


class CpuMeter:
    """Wall time, the child's CPU time and everything else's CPU time around one run."""

    def __enter__(self) -> CpuMeter:
        self.load = os.getloadavg()[0]
        self.t0, self.busy0, self.kids0 = time.perf_counter(), busy_seconds(), children_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.child_cpu = children_seconds() - self.kids0
        other = busy_seconds() - self.busy0 - self.child_cpu
        self.other_cores = max(other, 0.0) / self.wall

    def fields(self) -> Row:
        return {"wall_s": round(self.wall, 2), "cpu_s": round(self.child_cpu, 2),
                "other_cores": round(self.other_cores, 2), "load1_before": round(self.load, 2)}


# --- the two tools ----------------------------------------------------------------------------

def train_timed(cmd: list[str], out: Path, timeout: float) -> tuple[Row, CpuMeter]:
    """Run a `deepq train ... --out OUT` command under a CpuMeter: its summary.json and meter."""
    with CpuMeter() as meter:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"deepq failed ({proc.returncode}): {' '.join(cmd)}\n"
                           f"{(proc.stdout + proc.stderr)[-3000:]}")
    return json.loads((out / "summary.json").read_text()), meter


def run_deepq(args: argparse.Namespace, rep: int) -> Row:
    sets = {"buffer_size": args.buffer_size, "learning_starts": args.learning_starts,
            "epsilon_steps": args.learning_starts, "chunk_steps": args.window,
            "checkpoint_every": 0, "save_replay": "false"}
    with tempfile.TemporaryDirectory(prefix="deepq-atari-") as tmp:
        out = Path(tmp) / "run"
        cmd = [args.deepq, "train", "--env", "ALE/Pong-v5", "--preset", "nature",
               "--seed", str(rep), "--total-steps", str(args.steps),
               *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")],
               "--no-artifacts", "--quiet", "--out", str(out), "--force"]
        summary, meter = train_timed(cmd, out, args.timeout)
    return {"tool": "deepq", "seed": rep, "steps_per_sec": summary["last_chunk_steps_per_sec"],
            "window": [args.steps - args.window, args.steps], **meter.fields(),
            "first_chunk_s": summary["first_chunk_seconds"],
            "train_s": summary["train_seconds"], "command": " ".join(cmd)}


def cleanrl_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    python = args.peers_dir / "cleanrl-atari-venv" / "bin" / "python"
    src = args.peers_dir / "cleanrl" / "src"
    for need in (python, src / "cleanrl" / "dqn_atari_jax.py", src / "cleanrl_utils" /
                 "atari_wrappers.py"):
        if not need.exists():
            sys.exit(f"CleanRL Atari peer missing ({need}): {SETUP_HINT}")
    return python, src


def run_cleanrl(args: argparse.Namespace, rep: int) -> Row:
    python, src = cleanrl_paths(args)
    script = src / "cleanrl" / "dqn_atari_jax.py"
    seed = rep + 1  # dqn_atari_jax.py's default seed is 1
    flags = {"env-id": "PongNoFrameskip-v4", "seed": seed, "total-timesteps": args.steps,
             "learning-starts": args.learning_starts, "buffer-size": args.buffer_size,
             "train-frequency": 4, "batch-size": 32, "target-network-frequency": 10_000,
             "start-e": 1.0, "end-e": 0.1,
             "exploration-fraction": args.learning_starts / args.steps}
    cmd = [str(python), "-u", "-c", CLEANRL_SHIM, str(script),
           *[x for k, v in flags.items() for x in (f"--{k}", str(v))]]
    env = {**os.environ, "PYTHONPATH": str(src), "JAX_PLATFORMS": "cpu"}
    stamps: list[float] = []  # arrival time of each "SPS:" line
    with tempfile.TemporaryDirectory(prefix="cleanrl-atari-") as tmp:
        log = Path(tmp) / "stderr.log"
        with CpuMeter() as meter, log.open("w") as err:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                    stderr=err, text=True, bufsize=1)
            assert proc.stdout is not None
            deadline = time.monotonic() + args.timeout
            try:
                for line in proc.stdout:
                    if line.startswith("SPS:"):
                        stamps.append(time.perf_counter())
                    if time.monotonic() > deadline:
                        proc.kill()
                rc = proc.wait(timeout=max(deadline - time.monotonic(), 1))
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if rc != 0:
            raise RuntimeError(f"dqn_atari_jax.py failed ({rc}): {' '.join(cmd[4:])}\n"
                               f"{log.read_text()[-3000:]}")
    # A line at every multiple of 100 above learning_starts (they are multiples of 4 too).
    first = (args.learning_starts // 100 + 1) * 100
    steps_at = {first + 100 * i: t for i, t in enumerate(stamps)}
    start, end = args.steps - args.window, max(steps_at)
    if start not in steps_at or end <= start:
        raise RuntimeError(f"CleanRL printed SPS for steps {min(steps_at)}..{end}, "
                           f"not over the window from {start}")
    rate = (end - start) / (steps_at[end] - steps_at[start])
    return {"tool": "cleanrl", "seed": seed, "steps_per_sec": round(rate, 1),
            "window": [start, end], **meter.fields(),
            "command": "python dqn_atari_jax.py " + " ".join(cmd[5:])}


RUNNERS = {"deepq": run_deepq, "cleanrl": run_cleanrl}


# --- description and output -------------------------------------------------------------------

def versions(python: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\n"
            f"print(json.dumps({{p: m.version(p) for p in {list(PACKAGES)!r}}} | "
            "{'python': sys.version.split()[0]}))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    except (subprocess.CalledProcessError, OSError, json.JSONDecodeError):
        return {}


def git(*argv: str) -> str:
    proc = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
    return proc.stdout.strip()


def machine() -> Row:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(int(mem) / 2**20, 1),
            "os": platform.platform(), "gpu": "none (CPU only, JAX_PLATFORMS=cpu for CleanRL)"}


def describe(args: argparse.Namespace, tools: list[str]) -> Row:
    info: Row = {"machine": machine(), "versions": {}}
    if "deepq" in tools:
        deepq_py = str(Path(args.deepq).parent / "python")
        dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
        info["versions"]["deepq"] = versions(deepq_py) | {"commit": git("rev-parse", "HEAD")[:12]
                                                          + dirty}
    if "cleanrl" in tools:
        python, src = cleanrl_paths(args)
        script = (src / "cleanrl" / "dqn_atari_jax.py").read_bytes()
        commit = src / "COMMIT"
        info["versions"]["cleanrl"] = versions(str(python)) | {
            "commit": commit.read_text().strip()[:12] if commit.exists() else "?",
            "dqn_atari_jax.py sha256": hashlib.sha256(script).hexdigest()[:16]}
    return info


def summarize(rows: list[Row]) -> Row:
    med = {t: statistics.median(r["steps_per_sec"] for r in rows if r["tool"] == t)
           for t in TOOLS if any(r["tool"] == t for r in rows)}
    out: Row = {"median_steps_per_sec": med}
    if len(med) == 2:
        out["ratio_deepq_over_cleanrl"] = round(med["deepq"] / med["cleanrl"], 2)
    return out


def markdown(doc: Row) -> str:
    s, m = doc["settings"], doc["machine"]
    lines = [
        "# Atari training throughput: deepq vs CleanRL dqn_atari_jax.py (Pong, CPU)",
        "",
        f"Measured {doc['date']} by `benchmarks/atari_throughput.py`. Machine: {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gb']} GB, {m['gpu']}; {m['os']}.",
        "",
        f"DQN on Pong, Nature preprocessing and network, batch 32, an update every 4 steps, "
        f"{s['steps']:,} steps per run, training from step {s['learning_starts']:,}, replay "
        f"{s['buffer_size']:,} (Nature: 1M; not needed to time the steps, as long as the "
        f"per-step work does not grow with the replay: see the notes), epsilon 1 -> 0.1 "
        f"over the warm-up. **Steps/s is agent steps per second over steps "
        f"{s['steps'] - s['window']:,}..{s['steps']:,}** (after warm-up and "
        f"JIT compile; CleanRL's last timestamped line is at {doc['cleanrl_window_end']}). "
        f"{s['repeats']} runs per tool, alternating.",
        "",
        "| tool | steps/s per run | median | wall s per run | other cores busy |",
        "|---|---|---:|---|---|",
    ]
    for tool in TOOLS:
        rows = [r for r in doc["runs"] if r["tool"] == tool]
        if rows:
            med = doc["median_steps_per_sec"][tool]
            rates = ", ".join(str(r["steps_per_sec"]) for r in rows)
            walls = ", ".join(f"{r['wall_s']:.0f}" for r in rows)
            others = ", ".join(f"{r['other_cores']:.2f}" for r in rows)
            lines.append(f"| {tool} | {rates} | {med:.1f} | {walls} | {others} |")
    if "ratio_deepq_over_cleanrl" in doc:
        lines += ["", f"**Median ratio deepq / CleanRL: {doc['ratio_deepq_over_cleanrl']}x.**"]
    lines += [
        "",
        "*other cores busy*: CPU time of everything except the measured process, over its "
        f"wall time, in cores (of {m['cores']}). {doc['paused_note']}",
    ]
    if doc.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in doc["notes"]]
    lines += [
        "",
        "## Versions",
        "",
        "| | " + " | ".join(doc["versions"]) + " |",
        "|---|" + "---|" * len(doc["versions"]),
    ]
    keys = sorted({k for v in doc["versions"].values() for k in v})
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(v.get(key, "-") for v in doc["versions"].values())
                     + " |")
    lines += ["", "## Settings that differ", "", "| | deepq | CleanRL |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in DIFFERENCES]
    lines += ["", "## Commands", ""]
    for tool in TOOLS:
        rows = [r for r in doc["runs"] if r["tool"] == tool]
        if rows:
            lines += [f"- {tool} (seed varies per run): `{rows[0]['command']}`"]
    lines += ["", "Reproduce: `benchmarks/peers_setup.sh CLEANRL_CHECKOUT`, then "
              f"`.venv/bin/python benchmarks/atari_throughput.py --repeats {s['repeats']} "
              f"--steps {s['steps']}`.", ""]
    return "\n".join(lines)


def save(args: argparse.Namespace, tools: list[str], rows: list[Row], paused: list[int]) -> Row:
    settings = {k: getattr(args, k) for k in ("steps", "window", "learning_starts",
                                              "buffer_size", "repeats")}
    path = args.out_dir / "atari_throughput.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    if old.get("settings") == settings:  # keep the other tool's runs from an earlier call
        rows = [r for r in old["runs"] if r["tool"] not in tools] + rows
    info = describe(args, [r["tool"] for r in rows])
    if old.get("settings") == settings:
        info["versions"] = old.get("versions", {}) | info["versions"]
    ends = [r["window"][1] for r in rows if r["tool"] == "cleanrl"]
    note = (f"During the runs, {len(paused)} process(es) matching {args.pause!r} were "
            "paused (SIGSTOP)." if paused else "No process was paused.")
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"), **info,
           "settings": settings, "cleanrl_window_end": ends[0] if ends else "-",
           "paused_note": note + " Other work (e.g. tests) may still have run: see "
           "other_cores.", **summarize(rows), "runs": rows,
           "notes": args.note,
           "differences": [dict(zip(("what", "deepq", "cleanrl"), d)) for d in DIFFERENCES]}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    (args.out_dir / "atari_throughput.md").write_text(markdown(doc))
    return doc


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers", default="deepq,cleanrl", help="comma-separated subset")
    p.add_argument("--repeats", type=int, default=3, help="runs per tool")
    p.add_argument("--steps", type=int, default=4000, help="agent steps per run")
    p.add_argument("--window", type=int, default=None,
                   help="timed steps at the end of each run (default: steps / 2)")
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--buffer-size", type=int, default=10_000)
    p.add_argument("--pause", default="deepq train --resume",
                   help="pgrep -f pattern of processes to SIGSTOP while measuring ('' : none)")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the results' notes (repeatable)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run")
    p.add_argument("--deepq", default=str(Path(sys.executable).parent / "deepq"), help="deepq CLI")
    p.add_argument("--peers-dir", type=Path, default=PEERS, help="made by peers_setup.sh")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args()
    args.window = args.window or args.steps // 2
    start = args.steps - args.window
    if args.steps % args.window or start % 100 or start < args.learning_starts + 500:
        p.error("need --steps a multiple of --window, steps - window a multiple of 100 and "
                "at least learning_starts + 500 (so the JIT compile is not timed)")
    return args


def main() -> None:
    args = parse_args()
    tools = [t for t in args.peers.split(",") if t]
    if set(tools) - set(TOOLS) or not tools:
        sys.exit(f"--peers: choose from {','.join(TOOLS)}")
    if "cleanrl" in tools:
        cleanrl_paths(args)  # fail now, not after the deepq runs
    rows: list[Row] = []
    with Paused(args.pause) as paused:
        for rep in range(args.repeats):
            for tool in tools:
                row = RUNNERS[tool](args, rep)
                print(f"{tool} run {rep + 1}/{args.repeats}: {row['steps_per_sec']} steps/s "
                      f"(wall {row['wall_s']} s, other cores {row['other_cores']})", flush=True)
                rows.append(row)
    doc = save(args, tools, rows, paused.pids)
    print(markdown(doc))


if __name__ == "__main__":
    main()
