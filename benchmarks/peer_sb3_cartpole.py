"""SB3 DQN on CartPole-v1 with the rl-baselines3-zoo hyperparameters.

Run with the SB3 peer venv (see peers_setup.sh), not deepq's:

    /tmp/deepq-peers/sb3-venv/bin/python benchmarks/peer_sb3_cartpole.py --seed 0

Prints one JSON line: peer, seed, train_s (model.learn only), eval_s,
eval_mean, eval_std (100 deterministic episodes via evaluate_policy), steps.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

ENV_ID = "CartPole-v1"
# rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 entry.
ZOO: dict[str, Any] = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}
ZOO_STEPS = 50_000


def train(seed: int, steps: int) -> tuple[DQN, float]:
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    model = DQN("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **ZOO)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model, time.perf_counter() - start


def evaluate(model: DQN, seed: int, episodes: int) -> tuple[float, float]:
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed + 10_000)
    mean, std = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)
    return float(mean), float(std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=ZOO_STEPS)
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args()
    model, train_s = train(args.seed, args.steps)
    start = time.perf_counter()
    mean, std = evaluate(model, args.seed, args.episodes)
    eval_s = time.perf_counter() - start
    row = {"peer": "sb3", "seed": args.seed, "train_s": round(train_s, 2),
           "eval_s": round(eval_s, 2), "eval_mean": mean, "eval_std": std,
           "steps": int(model.num_timesteps)}
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
