"""gymnax's MinAtar games against the original MinAtar package, under a uniform random policy.

    .venv/bin/python benchmarks/minatar_envs.py                 # 1,000 episodes per game
    .venv/bin/python benchmarks/minatar_envs.py --episodes 200

deepq plays MinAtar through gymnax's JAX ports. This checks that each port plays the same
game as Young & Tian's `minatar` package (PyPI) where it is easiest to compare: a uniform
random policy over all 6 actions with sticky actions 0.1 (the `minatar` preset's settings),
mean episode return and length. The reference runs in a throwaway venv outside the repo
(`$DEEPQ_PEERS_DIR/minatar-venv`, made on first use with `pip install --no-deps minatar
numpy`). Freeway's episodes last 2,500 steps, so it plays a tenth of the episodes. Writes
benchmarks/results/minatar_envs.{md,json}.
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jax
import numpy as np
from atari_throughput import HERE, PEERS

from deepq.envs import make_gymnax
from deepq.evaluate import gymnax_episodes

VENV = PEERS / "minatar-venv"
STICKY = 0.1
# gymnax id -> the minatar package's name
GAMES = {"Asterix": "asterix", "Breakout": "breakout", "Freeway": "freeway",
         "Seaquest": "seaquest", "SpaceInvaders": "space_invaders"}

# Runs inside VENV after a header that reads the arguments (game, episodes, seed, sticky)
# and defines `choose(state)`: fresh episodes of the original game, one JSON line.
EPISODES = """
env = Environment(game, sticky_action_prob=sticky)
env.seed(seed)
rng = np.random.default_rng(seed)
returns, lengths = [], []
for _ in range(episodes):
    env.reset()
    done, total, steps = False, 0.0, 0
    while not done:
        reward, done = env.act(choose(env.state()))
        total, steps = total + reward, steps + 1
    returns.append(total)
    lengths.append(steps)
print(json.dumps({"returns": returns, "lengths": lengths}))
"""

# The original games under uniform random actions.
REFERENCE = """
import json, sys
import numpy as np
from minatar import Environment
game, episodes, seed, sticky = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def choose(state):
    return int(rng.integers(6))
""" + EPISODES


def reference_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "minatar",
                        "numpy"], check=True)
    return python


def run_reference(python: Path, script: str, *args: object) -> dict:
    """Run `script` in the reference venv with `args`; its last line of output, as JSON."""
    out = subprocess.run([str(python), "-c", script, *map(str, args)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def reference_play(python: Path, game: str, episodes: int, seed: int) -> dict:
    return run_reference(python, REFERENCE, game, episodes, seed, STICKY)


def gymnax_play(game: str, episodes: int, seed: int) -> dict:
    """Random play of fresh gymnax episodes up to the env's step limit: returns, lengths."""
    env, params = make_gymnax(f"{game}-MinAtar", True)

    def uniform(num_actions, obs, key, epsilon):
        return jax.random.randint(key, (obs.shape[0],), 0, num_actions)

    ret, length = jax.jit(lambda key: gymnax_episodes(
        uniform, env.num_actions, env, params, episodes, key, 1.0, STICKY))(
        jax.random.PRNGKey(seed))
    return {"returns": np.asarray(ret).tolist(), "lengths": np.asarray(length).tolist()}


def summary(x: list[float]) -> tuple[float, float]:
    """Mean and its standard error."""
    a = np.asarray(x, np.float64)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a)))


def compare(ours: list[float], theirs: list[float]) -> dict:
    """Both means with their standard errors, and z: the difference over its standard
    error (None when both samples are constant, as Freeway's fixed length)."""
    (m1, s1), (m2, s2) = summary(ours), summary(theirs)
    se = float(np.hypot(s1, s2))
    return {"gymnax": [m1, s1], "minatar": [m2, s2], "z": (m1 - m2) / se if se > 0 else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args()
    python = reference_venv()
    rows = []
    for game, name in GAMES.items():
        n = max(args.episodes // 10, 10) if game == "Freeway" else args.episodes
        ours, theirs = gymnax_play(game, n, args.seed), reference_play(python, name, n,
                                                                       args.seed)
        row = {"game": game, "episodes": n}
        for key in ("returns", "lengths"):
            row[key] = compare(ours[key], theirs[key])
        rows.append(row)
        print(game, json.dumps(row), file=sys.stderr)
    version = subprocess.run([str(python), "-m", "pip", "show", "minatar"], capture_output=True,
                             text=True).stdout
    version = next((line.split()[1] for line in version.splitlines()
                    if line.startswith("Version:")), "?")
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "seed": args.seed,
           "sticky_actions": STICKY, "minatar_version": version, "rows": rows}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "minatar_envs.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = [
        "# MinAtar games: gymnax's ports against the original package, random policy",
        "",
        f"Measured {doc['date']} by `benchmarks/minatar_envs.py`: uniform random actions "
        f"over all 6, sticky actions {STICKY}, fresh episodes; minatar {version} from PyPI. "
        "Mean ± standard error; z is the difference over its standard error (|z| < 2 is "
        "what two samples of the same game give 95% of the time).",
        "",
        "| game | episodes | return, gymnax | return, minatar | z | length, gymnax "
        "| length, minatar | z |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = []
        for key in ("returns", "lengths"):
            (m1, s1), (m2, s2), z = r[key]["gymnax"], r[key]["minatar"], r[key]["z"]
            cells += [f"{m1:.3f} ± {s1:.3f}", f"{m2:.3f} ± {s2:.3f}",
                      "-" if z is None else f"{z:+.1f}"]
        md.append(f"| {r['game']} | {r['episodes']:,} | " + " | ".join(cells) + " |")
    (args.out_dir / "minatar_envs.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
