"""A trained deepq agent played in gymnax's MinAtar port and in the original game.

    .venv/bin/python benchmarks/minatar_policy.py runs/minatar-Asterix
    .venv/bin/python benchmarks/minatar_policy.py runs/breakout --episodes 500 --epsilon 0

`benchmarks/minatar_envs.py` checks the ports against Young & Tian's `minatar` package under
random play. This plays each seed's trained parameters in both, the same way (epsilon-greedy,
the run's sticky actions, fresh episodes): if the port played a different game where a good
agent goes (longer episodes, later difficulty ramps), the two means would differ. The
reference side runs in the throwaway venv of minatar_envs.py, with the network's forward pass
written out in numpy (the `minatar_cnn` preset's net: the 3x3 convolution as patches times
its kernel, as deepq's PatchConv computes it), checked against deepq's Q-values first.
Writes benchmarks/results/minatar_policy_<game>.{md,json}.
"""

from __future__ import annotations

from deepq.cpu import setup_process

setup_process()  # the command line's CPU settings, made before JAX loads

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import jax
import numpy as np
from minatar_envs import EPISODES, GAMES, HERE, compare, reference_venv, run_reference

import deepq
from deepq.envs import make_gymnax
from deepq.evaluate import gymnax_episodes

# The net's forward pass in numpy, for weights `w` (checked against deepq's before use).
FORWARD = """
def q_values(state):
    x = state.astype(np.float32)  # [10, 10, C]
    patches = np.concatenate([x[i:i + 8, j:j + 8] for i in range(3) for j in range(3)], -1)
    h = np.maximum(patches @ w["conv_kernel"] + w["conv_bias"], 0.0).reshape(-1)
    h = np.maximum(h @ w["hidden_kernel"] + w["hidden_bias"], 0.0)
    return h @ w["out_kernel"] + w["out_bias"]
"""

# Runs inside the minatar venv: the trained net (npz), epsilon-greedy, in the original game.
REFERENCE = """
import json, sys
import numpy as np
from minatar import Environment
game, weights, episodes, seed, sticky, epsilon = sys.argv[1:7]
episodes, seed, sticky, epsilon = int(episodes), int(seed), float(sticky), float(epsilon)
w = np.load(weights)
""" + FORWARD + """
def choose(state):
    if rng.random() < epsilon:
        return int(rng.integers(6))
    return int(np.argmax(q_values(state)))
""" + EPISODES


def seed_weights(params: dict, s: int) -> dict[str, np.ndarray]:
    """Seed s's `minatar_cnn` parameters under the names the reference script reads."""
    p = params["params"]
    take = {"conv": p["Conv_0"]["Dense_0"], "hidden": p["Dense_0"], "out": p["Dense_1"]}
    return {f"{name}_{kind}": np.asarray(layer[kind][s], np.float32)
            for name, layer in take.items() for kind in ("kernel", "bias")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--episodes", type=int, default=200, help="per seed and game version")
    p.add_argument("--epsilon", type=float, default=0.1,
                   help="the MinAtar paper's curves are returns at epsilon 0.1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args()
    run = deepq.load(args.run)
    cfg = run.config
    game = cfg.env_id.removesuffix("-MinAtar")
    if cfg.network != "minatar_cnn" or game not in GAMES:
        sys.exit(f"minatar_policy.py: {args.run} is not a MinAtar run with the minatar_cnn net")
    env, env_params = make_gymnax(cfg.env_id, cfg.full_action_set)
    play = jax.jit(lambda params, key: gymnax_episodes(
        run.agent.act, params, env, env_params, args.episodes, key, args.epsilon,
        cfg.sticky_actions))
    python = reference_venv()
    rows = []
    for s, seed in enumerate(cfg.seeds):
        params = jax.tree.map(lambda x, s=s: x[s], run.params)
        weights = seed_weights(run.params, s)
        check_forward(run, params, weights)
        ret, length = play(params, jax.random.PRNGKey(args.seed + 1000 * s))
        ours = {"returns": np.asarray(ret).tolist(), "lengths": np.asarray(length).tolist()}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "weights.npz"
            np.savez(path, **weights)
            theirs = run_reference(python, REFERENCE, GAMES[game], path, args.episodes,
                                   args.seed + 1000 * s, cfg.sticky_actions, args.epsilon)
        row = {"seed": seed}
        for key in ("returns", "lengths"):
            row[key] = compare(ours[key], theirs[key]) | {
                "max": [max(ours[key]), max(theirs[key])]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    steps = deepq_steps(args.run)
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "run": str(args.run),
           "game": game, "frames": steps, "episodes": args.episodes, "epsilon": args.epsilon,
           "sticky_actions": cfg.sticky_actions,
           "gymnax_step_limit": int(env_params.max_steps_in_episode), "rows": rows}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = f"minatar_policy_{game}"
    (args.out_dir / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = [
        f"# {game}: a trained deepq agent in gymnax's port and in the original game",
        "",
        f"Measured {doc['date']} by `benchmarks/minatar_policy.py {args.run}`: each seed's "
        f"parameters after {steps:,} frames, {args.episodes} fresh episodes per seed and "
        f"version, epsilon {args.epsilon}, sticky actions {cfg.sticky_actions}; gymnax step "
        f"limit {doc['gymnax_step_limit']:,}. Mean ± standard error (max); z is the "
        "difference over its standard error.",
        "",
        "| seed | return, gymnax | return, minatar | z | length, gymnax | length, minatar "
        "| z |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = []
        for key in ("returns", "lengths"):
            (m1, s1), (m2, s2), z = r[key]["gymnax"], r[key]["minatar"], r[key]["z"]
            hi1, hi2 = r[key]["max"]
            cells += [f"{m1:.2f} ± {s1:.2f} ({hi1:g})", f"{m2:.2f} ± {s2:.2f} ({hi2:g})",
                      "-" if z is None else f"{z:+.1f}"]
        md.append(f"| {r['seed']} | " + " | ".join(cells) + " |")
    (args.out_dir / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def check_forward(run, params, weights: dict[str, np.ndarray]) -> None:
    """The numpy forward pass gives deepq's Q-values on random boards."""
    scope = {"np": np, "w": weights}
    exec(FORWARD, scope)
    boards = np.random.default_rng(0).random((16, 10, 10, run.info.obs_shape[-1])) < 0.1
    ours = np.asarray(run.agent.q_values(params, boards))
    theirs = np.stack([scope["q_values"](b) for b in boards])
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4)


def deepq_steps(run_dir: Path) -> int:
    """Frames per seed behind the run's latest checkpoint (its file name's step)."""
    from deepq import checkpoint

    return int(checkpoint.latest(run_dir).stem.split("_")[-1])


if __name__ == "__main__":
    main()
