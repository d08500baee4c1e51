"""CleanRL dqn.py (default hyperparameters) on CartPole-v1, then a 100-episode eval.

Run with the CleanRL peer venv (see peers_setup.sh), not deepq's:

    /tmp/deepq-peers/cleanrl-venv/bin/python benchmarks/peer_cleanrl_cartpole.py \
        --seed 1 --total-timesteps 100000

dqn.py runs as its own subprocess (``--save-model --no-cuda``) in a temporary
run dir; ``train_s`` is that whole process's wall time. The saved state dict is
loaded into the same 120-84 MLP and run greedily for ``--episodes`` episodes.
Prints one JSON line: peer, seed, train_s, eval_s, eval_mean, eval_std, steps.
torch/gymnasium are imported only after training, so they count in eval_s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from atari_throughput import PEERS

ENV_ID = "CartPole-v1"


def train(src: Path, seed: int, steps: int, workdir: Path) -> tuple[Path, float]:
    """Run dqn.py in ``workdir``; return the saved model path and process wall time."""
    cmd = [sys.executable, str(src / "cleanrl" / "dqn.py"), "--seed", str(seed),
           "--total-timesteps", str(steps), "--save-model", "--no-cuda"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    log = workdir / "dqn.log"
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"dqn.py failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    (model,) = workdir.glob("runs/*/dqn.cleanrl_model")
    return model, wall


def evaluate(model_path: Path, seed: int, episodes: int) -> list[float]:
    """Greedy returns of the saved Q-network over ``episodes`` episodes."""
    import gymnasium as gym
    import torch
    from torch import nn

    class QNetwork(nn.Module):  # same shape and key names as CleanRL's dqn.py
        def __init__(self, n_obs: int, n_actions: int) -> None:
            super().__init__()
            self.network = nn.Sequential(
                nn.Linear(n_obs, 120), nn.ReLU(),
                nn.Linear(120, 84), nn.ReLU(),
                nn.Linear(84, n_actions),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.network(x)

    env = gym.make(ENV_ID)
    net = QNetwork(env.observation_space.shape[0], env.action_space.n)
    net.load_state_dict(torch.load(model_path, map_location="cpu"))
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + 10_000 if ep == 0 else None)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action = int(net(torch.as_tensor(obs)).argmax())
            obs, reward, term, trunc, _ = env.step(action)
            total, done = total + float(reward), term or trunc
        returns.append(total)
    return returns


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cleanrl-run-") as tmp:
        model, train_s = train(args.src, args.seed, args.total_timesteps, Path(tmp))
        start = time.perf_counter()
        returns = evaluate(model, args.seed, args.episodes)
        eval_s = time.perf_counter() - start
    mean = sum(returns) / len(returns)
    std = (sum((r - mean) ** 2 for r in returns) / len(returns)) ** 0.5
    return {"peer": "cleanrl", "seed": args.seed, "train_s": round(train_s, 2),
            "eval_s": round(eval_s, 2), "eval_mean": mean, "eval_std": std,
            "steps": args.total_timesteps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--total-timesteps", type=int, default=500_000, help="dqn.py's own default")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--src", type=Path, default=PEERS / "cleanrl" / "src",
                        help="holds cleanrl/dqn.py and cleanrl_utils/ (made by peers_setup.sh)")
    print(json.dumps(run(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
