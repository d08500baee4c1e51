"""REINFORCE wall time: deepq's drivers against a sequential numpy loop, same settings.

    .venv/bin/python benchmarks/reinforce_speed.py --env CartPole-v1 --episodes 300
    .venv/bin/python benchmarks/reinforce_speed.py --env KarpathyPong-v0 --episodes 30 \
        --env-workers 2 --repeats 3

The reference is the algorithm as the "Pong from pixels" post runs it (Karpathy 2016):
one env, one episode at a time, a numpy forward pass per step, the episode's gradient by
hand at its end, an RMSProp step every `batch_episodes` episodes. It is written here from
the algorithm's description, with the preset's sizes and settings; deepq runs the same
preset with its host driver (Gymnasium envs in lockstep, jitted act and update) and, for
gymnax envs, its jitted driver. Learning differs in its random draws, so episode lengths
differ: the table compares env steps per second, learning included (the time of each
episode's steps and of its share of the updates), and the time per 1,000 episodes.
With `--repeats N` every tool runs N times, in alternating order, and the table gives the
median (this VM's speed drifts by a third within an hour).
Writes benchmarks/results/reinforce_speed.{md,json} (rows are merged by env and tool).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def reference_numpy(env_id: str, episodes: int, seed: int) -> dict:
    """Sequential REINFORCE in numpy with the env's preset (one hidden ReLU layer, no
    biases, RMSProp with eps outside the root, standardised returns per batch)."""
    from deepq.envs import make_gymnasium
    from deepq.presets import base_config

    cfg = base_config(env_id, None, "reinforce")
    env = make_gymnasium(env_id)
    rng = np.random.default_rng(seed)
    D = int(np.prod(env.observation_space.shape))
    H = cfg.hidden_sizes[0]
    bernoulli = cfg.policy == "bernoulli"
    A = 1 if bernoulli else int(env.action_space.n)
    model = {"W1": rng.standard_normal((D, H)) / np.sqrt(D),
             "W2": rng.standard_normal((H, A)) / np.sqrt(H)}
    grads = {k: np.zeros_like(v) for k, v in model.items()}
    cache = {k: np.zeros_like(v) for k, v in model.items()}
    batch: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    steps = 0
    start = time.perf_counter()
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed * 1_000_003 + episode)
        xs, hs, dlogits, rewards = [], [], [], []
        done = False
        while not done:
            x = np.asarray(obs, np.float64).ravel()
            h = np.maximum(x @ model["W1"], 0.0)
            z = h @ model["W2"]
            if bernoulli:
                p = 1.0 / (1.0 + np.exp(-z[0]))
                action = int(rng.uniform() < p)
                dlogit = np.array([action - p])  # d log pi / d logit
            else:
                e = np.exp(z - z.max())
                p = e / e.sum()
                action = int(rng.choice(A, p=p))
                dlogit = -p
                dlogit[action] += 1.0
            obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            xs.append(x)
            hs.append(h)
            dlogits.append(dlogit)
            rewards.append(reward)
            steps += 1
        batch.append((np.array(xs), np.array(hs), np.array(dlogits), np.array(rewards)))
        if len(batch) == cfg.batch_episodes:
            returns = []
            for _, _, _, r in batch:
                g, running = np.zeros(len(r)), 0.0
                for t in reversed(range(len(r))):
                    if cfg.reset_on_reward and r[t] != 0:
                        running = 0.0
                    running = r[t] + cfg.gamma * running
                    g[t] = running
                returns.append(g)
            flat = np.concatenate(returns)
            mean, std = flat.mean(), flat.std() + 1e-8
            for (x, h, dlogit, _), g in zip(batch, returns):
                delta = dlogit * ((g - mean) / std)[:, None]  # gradient ascent direction
                grads["W2"] += h.T @ delta
                dh = (delta @ model["W2"].T) * (h > 0)
                grads["W1"] += x.T @ dh
            for k in model:
                cache[k] = cfg.rmsprop_decay * cache[k] + (1 - cfg.rmsprop_decay) * grads[k] ** 2
                model[k] += cfg.learning_rate * grads[k] / (np.sqrt(cache[k]) + cfg.rmsprop_eps)
                grads[k][:] = 0.0
            batch = []
    seconds = time.perf_counter() - start
    env.close()
    return {"tool": "numpy, sequential", "episodes": episodes, "steps": steps,
            "seconds": seconds}


def deepq_run(env_id: str, episodes: int, backend: str, seeds: int, workers: int = 0) -> dict:
    import deepq
    from deepq.presets import base_config

    # baseline=False: the same estimator as the numpy loop (the CartPole preset adds one).
    cfg = base_config(env_id, None, "reinforce").replace(
        total_episodes=episodes, backend=backend, num_seeds=seeds, gif=False,
        checkpoint_every=0, env_workers=workers, baseline=False)
    out = Path("/tmp/deepq-reinforce-speed") / f"{env_id}-{backend}-{seeds}-{workers}"
    deepq.train(cfg, out, force=True, progress=False, artifacts=False)
    summary = json.loads((out / "summary.json").read_text())
    tool = f"deepq {summary['driver']}" + (f", {seeds} seeds" if seeds > 1 else "")
    tool += f", {workers} env workers" if workers else ""
    tool += ", sparse inputs" if cfg.sparse_inputs else ""
    return {"tool": tool,
            "episodes": episodes * seeds, "steps": int(sum(summary["steps_per_seed"])),
            "seconds": summary["train_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=10, help="for the jitted driver's row")
    parser.add_argument("--env-workers", type=int, default=0,
                        help="also run the host driver with this many env worker processes")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per tool, in alternating order; the table takes the median")
    args = parser.parse_args()
    from deepq.envs import GYMNAX_ENVS

    e = args.episodes
    tools = [lambda: reference_numpy(args.env, e, 0),
             lambda: deepq_run(args.env, e, "gymnasium", 1)]
    if args.env_workers:
        tools.append(lambda: deepq_run(args.env, e, "gymnasium", 1, args.env_workers))
    if args.env in GYMNAX_ENVS:
        tools += [lambda: deepq_run(args.env, e, "gymnax", 1),
                  lambda: deepq_run(args.env, e, "gymnax", args.seeds)]
    runs: list[list[dict]] = [[] for _ in tools]
    for repeat in range(args.repeats):
        order = range(len(tools)) if repeat % 2 == 0 else reversed(range(len(tools)))
        for i in order:
            runs[i].append(tools[i]())
    rows = []
    for tool_runs in runs:
        row = dict(tool_runs[0])
        row["runs_steps_per_sec"] = [r["steps"] / r["seconds"] for r in tool_runs]
        row["seconds"] = statistics.median(r["seconds"] for r in tool_runs)
        rows.append(row)
    base = rows[0]["steps"] / rows[0]["seconds"]
    for row in rows:
        row |= {"env": args.env, "steps_per_sec": row["steps"] / row["seconds"],
                "seconds_per_1000_episodes": 1000 * row["seconds"] / row["episodes"],
                "speedup_steps_per_sec": row["steps"] / row["seconds"] / base}
        print(f"{row['tool']:28s} {row['episodes']:6d} episodes {row['steps']:9d} steps "
              f"{row['seconds']:8.1f} s  {row['steps_per_sec']:9.0f} steps/s  "
              f"x{row['speedup_steps_per_sec']:.1f}")
    write(rows)


def write(rows: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "reinforce_speed.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    new_keys = {(r["env"], r["tool"]) for r in rows}
    rows = [r for r in old if (r["env"], r["tool"]) not in new_keys] + rows
    machine = f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores"
    doc = {"measured": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine, "rows": rows}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["| env | tool | episodes | env steps | training s | steps/s | steps/s per run "
             "| s per 1k episodes | steps/s vs numpy |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per_run = ", ".join(f"{x:,.0f}" for x in r.get("runs_steps_per_sec", [])) or "-"
        lines.append(f"| {r['env']} | {r['tool']} | {r['episodes']} | {r['steps']:,} | "
                     f"{r['seconds']:.1f} | {r['steps_per_sec']:,.0f} | {per_run} | "
                     f"{r['seconds_per_1000_episodes']:.0f} | {r['speedup_steps_per_sec']:.1f}x |")
    (RESULTS / "reinforce_speed.md").write_text(
        f"REINFORCE wall time, {doc['measured']}, {machine} "
        "(benchmarks/reinforce_speed.py; steps/s: the median run's)\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
