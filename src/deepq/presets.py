"""Presets: named sets of Config values, each with a citation line saying where its values
come from, and the config an env trains with when no preset is named.

    config_for("CartPole-v1")                       # the env's default preset (cartpole)
    config_for("ALE/Pong-v5", preset="rainbow", seed=3)

The command line and the Python API both resolve a run's config here, so the same env,
preset and overrides give the same config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepq.agents import validated
from deepq.config import Config
from deepq.envs.atari import is_atari
from deepq.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    citation: str
    env_id: str
    overrides: dict[str, Any] = field(default_factory=dict)
    # env id substring -> further overrides, e.g. the 2013 paper's frame skip 3 for one game
    env_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # True: the overrides go on top of the env's default preset (one component of Rainbow
    # added to the agent the env trains with), not on top of Config()'s defaults
    on_default: bool = False

    def config(self, env_id: str | None = None) -> Config:
        env_id = env_id or self.env_id
        start = base_config(env_id, None) if self.on_default else Config(env_id=env_id)
        cfg = start.replace(**self.overrides, preset=self.name)
        for part, extra in self.env_overrides.items():
            if part in env_id:
                cfg = cfg.replace(**extra)
        return cfg


# Stable-Baselines3 DQN defaults that the zoo's hyperparameter files leave implicit:
# Huber (smooth L1) loss, Adam, gradient norm clipped at 10, linear epsilon from 1, one env.
SB3_DQN_DEFAULTS = dict(loss="huber", optimizer="adam", max_grad_norm=10.0,
                        epsilon_schedule="linear", epsilon_start=1.0, num_envs=1)

# Rainbow's parts at the values Rainbow uses (Hessel et al. 2017, Table 1): each one-part
# preset adds one of them, `rainbow` and `rainbow-minatar` add them all.
NOISY = dict(noisy=True, noisy_sigma0=0.5, epsilon_start=0.0, epsilon_end=0.0)
C51 = dict(distributional=True, num_atoms=51, v_min=-10.0, v_max=10.0)
PER = dict(prioritized=True, priority_alpha=0.5, priority_beta=0.4, priority_eps=1e-6)
RAINBOW_PARTS = dict(double_dqn=True, dueling=True, n_step=3, **NOISY, **C51, **PER)
# Returns of the classic-control envs (gamma 0.99, |r| <= 1) and MinAtar fit [-100, 100].
WIDE_SUPPORT = {part: dict(v_min=-100.0, v_max=100.0)
                for part in ("CartPole", "Acrobot", "MountainCar", "MinAtar")}

# Karpathy's pg-pong.py (2016), shared by the REINFORCE presets: 200 ReLU units without
# biases, RMSProp decay 0.99 with eps 1e-5 outside the root, no gradient clipping, gamma
# 0.99, batches of 10 episodes, returns standardised over the batch (the choice), a
# checkpoint every 100 episodes.
KARPATHY = dict(algo="reinforce", network="mlp", hidden_sizes=(200,), activation="relu",
                use_bias=False, optimizer="rmsprop", rmsprop_decay=0.99, rmsprop_eps=1e-5,
                rmsprop_eps_in_sqrt=False, rmsprop_centered=False, max_grad_norm=0.0,
                gamma=0.99, batch_episodes=10, standardize_returns="batch",
                checkpoint_every=100, select_every=0)

# Mnih et al. 2015 (Nature), Methods: the ALE preprocessing and evaluation protocol that the
# `nature` preset and the presets built on it share.
NATURE_ATARI = dict(network="nature_cnn", frame_resize=(84, 84), frame_crop_top=0,
                    frame_skip=4, frame_stack=4, max_pool_frames=True, noop_max=30,
                    eval_noop_max=30, terminal_on_life_loss=True, sticky_actions=0.0,
                    full_action_set=False, clip_rewards=True, eval_epsilon=0.05,
                    eval_episodes=30)

# PQN (Gallici et al. 2024, arXiv 2407.04811; reference code github.com/mttga/purejaxql,
# config/alg/pqn_*.yaml): rectified Adam, gradient norm clipped at 10, LayerNorm before every
# hidden activation, gamma 0.99, epsilon annealed linearly from 1; no replay or target net.
PQN = dict(algo="pqn", optimizer="radam", adam_eps=1e-8, max_grad_norm=10.0, layer_norm=True,
           gamma=0.99, epsilon_schedule="linear", epsilon_start=1.0, epsilon_steps=0,
           epsilon_delay=0, learning_starts=0, prefill_random=False)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "cartpole",
            "deepq's CartPole-v1 default, tuned on a 2-core CPU (benchmarks/README.md): DQN "
            "(Mnih et al. 2015) with PureJaxRL dqn.py's network size, batch, buffer and loss "
            "(Lu et al. 2022, github.com/luchris429/purejaxrl) at a shorter schedule, plus "
            "model selection as in SB3's EvalCallback + StopTrainingOnRewardThreshold: every "
            "5k steps 32 greedy episodes score the params, the best are kept, and training "
            "stops once every seed scores 500.",
            "CartPole-v1",
            dict(
                total_steps=100_000, num_envs=4, hidden_sizes=(64,), buffer_size=10_000,
                batch_size=128, learning_rate=1e-3, target_update="hard",
                target_update_interval=100, learning_starts=1_000, train_freq=1,
                gradient_steps=1, epsilon_fraction=0.1, epsilon_end=0.05, loss="mse",
                max_grad_norm=10.0, optimizer="adam", select_every=5_000, select_episodes=32,
                stop_at_return=500.0,
            ),
        ),
        Preset(
            "zoo-cartpole",
            "rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 (Raffin et al., "
            "github.com/DLR-RM/rl-baselines3-zoo); SB3 counts target_update_interval=10 in env "
            "steps, so with train_freq=256 the copy lands once per 128-update round.",
            "CartPole-v1",
            dict(
                total_steps=50_000, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                learning_starts=1_000, gamma=0.99, target_update_interval=128, train_freq=256,
                gradient_steps=128, epsilon_fraction=0.16, epsilon_end=0.04,
                hidden_sizes=(256, 256), **SB3_DQN_DEFAULTS,
            ),
        ),
        Preset(
            "zoo-acrobot",
            "rl-baselines3-zoo hyperparams/dqn.yml, Acrobot-v1 (Raffin et al., "
            "github.com/DLR-RM/rl-baselines3-zoo); SB3 counts target_update_interval=250 in "
            "env steps, which at one update per step is 250 updates here.",
            "Acrobot-v1",
            dict(
                total_steps=100_000, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
                learning_starts=0, gamma=0.99, target_update_interval=250, train_freq=4,
                gradient_steps=4, epsilon_fraction=0.12, epsilon_end=0.1,
                hidden_sizes=(256, 256), **SB3_DQN_DEFAULTS,
            ),
        ),
        Preset(
            "zoo-mountaincar",
            "rl-baselines3-zoo hyperparams/dqn.yml, MountainCar-v0 (Raffin et al., "
            "github.com/DLR-RM/rl-baselines3-zoo); SB3 counts target_update_interval=600 in "
            "env steps, which at 8 updates per 16 steps is 300 updates here.",
            "MountainCar-v0",
            dict(
                total_steps=120_000, learning_rate=4e-3, batch_size=128, buffer_size=10_000,
                learning_starts=1_000, gamma=0.98, target_update_interval=300, train_freq=16,
                gradient_steps=8, epsilon_fraction=0.2, epsilon_end=0.07,
                hidden_sizes=(256, 256), **SB3_DQN_DEFAULTS,
            ),
        ),
        Preset(
            "cleanrl-cartpole",
            "CleanRL cleanrl/dqn.py defaults for CartPole-v1 (Huang et al. 2022, JMLR 23(274)).",
            "CartPole-v1",
            dict(
                total_steps=500_000, learning_rate=2.5e-4, buffer_size=10_000, gamma=0.99,
                target_update="hard", target_update_interval=50, batch_size=128,
                epsilon_start=1.0, epsilon_end=0.05, epsilon_fraction=0.5,
                learning_starts=10_000, train_freq=10, gradient_steps=1, hidden_sizes=(120, 84),
                loss="mse", optimizer="adam", max_grad_norm=0.0, num_envs=1,
            ),
        ),
        Preset(
            "minatar",
            "MinAtar DQN (Young & Tian 2019, arXiv 1903.03176, github.com/kenjyoung/MinAtar "
            "examples/dqn.py): conv 16@3x3/1 -> 128, batch 32, replay 1e5, target every 1000 "
            "updates, one update per frame, a 5000-frame random warm-up, then eps 1 -> 0.1 "
            "linearly over the next 1e5 frames, centered RMSProp lr 2.5e-4 decay 0.95 with "
            "eps 0.01 added outside the square root (PyTorch's RMSprop, which the paper's "
            "code uses; DeepMind's puts it inside), Huber, "
            "gamma 0.99, 5M frames, sticky actions 0.1, all 6 actions. lr is the code's "
            "STEP_SIZE; the paper's learning curves show each game at its best step size "
            "(Breakout 2^-9, Asterix and Seaquest 2^-13, Freeway 2^-11, Space Invaders "
            "2^-12).",
            "Breakout-MinAtar",
            dict(
                network="minatar_cnn", total_steps=5_000_000, num_envs=1, batch_size=32,
                buffer_size=100_000, target_update="hard", target_update_interval=1_000,
                learning_starts=5_000, train_freq=1, gradient_steps=1,
                epsilon_schedule="linear", epsilon_start=1.0, epsilon_end=0.1,
                epsilon_steps=100_000, epsilon_delay=5_000, optimizer="rmsprop",
                learning_rate=2.5e-4, rmsprop_decay=0.95, rmsprop_eps=0.01,
                rmsprop_eps_in_sqrt=False, rmsprop_centered=True, loss="huber",
                huber_delta=1.0, gamma=0.99, max_grad_norm=0.0, sticky_actions=0.1,
                full_action_set=True, eval_episodes=100, chunk_steps=50_000,
                checkpoint_every=250_000, gif=True,
            ),
        ),
        Preset(
            "dqn2013",
            "Playing Atari with Deep Reinforcement Learning (Mnih et al. 2013, arXiv "
            "1312.5602), section 4: gray 110x84 frames cropped to 84x84, stack 4, frame skip 4 "
            "(3 for Space Invaders), rewards clipped to +-1, conv 16@8x8/4 -> 32@4x4/2 -> 256, "
            "RMSProp, batch 32, replay 1M, eps 1 -> 0.1 over the first 1M frames, 10M frames, "
            "one update per step, no target network, squared error, eval eps 0.05. Not in the "
            "paper, taken from Mnih et al. 2015: the RMSProp values, gamma 0.99, a 50k-step "
            "random warm-up and no-op starts in evaluation.",
            "ALE/Pong-v5",
            dict(
                network="dqn2013_cnn", frame_resize=(110, 84), frame_crop_top=18, frame_skip=4,
                frame_stack=4, max_pool_frames=False, noop_max=0, eval_noop_max=30,
                terminal_on_life_loss=False, sticky_actions=0.0, full_action_set=False,
                clip_rewards=True, total_steps=10_000_000, num_envs=1, batch_size=32,
                buffer_size=1_000_000, learning_starts=50_000, train_freq=1, gradient_steps=1,
                target_update="none", loss="mse", optimizer="rmsprop", learning_rate=2.5e-4,
                rmsprop_decay=0.95, rmsprop_eps=0.01, rmsprop_centered=True,
                max_grad_norm=0.0, gamma=0.99, epsilon_schedule="linear", epsilon_start=1.0,
                epsilon_end=0.1, epsilon_steps=1_000_000, eval_epsilon=0.05, eval_episodes=30,
                chunk_steps=10_000, checkpoint_every=500_000,
            ),
            env_overrides={"SpaceInvaders": dict(frame_skip=3)},
        ),
        Preset(
            "nature",
            "Human-level control through deep reinforcement learning (Mnih et al. 2015, "
            "Nature 518), Methods and Extended Data Table 1: gray 84x84 frames, max over the "
            "last 2 of each 4 skipped frames, stack 4, up to 30 no-op starts, life loss "
            "terminal in training, rewards clipped to +-1, conv 32@8x8/4 -> 64@4x4/2 -> "
            "64@3x3/1 -> 512, error clipped (Huber), RMSProp lr 2.5e-4 with gradient and "
            "squared-gradient momentum 0.95 and min squared gradient 0.01 (centered), batch "
            "32, replay 1M, 50k-step random warm-up, an update every 4 steps, target copy "
            "every 10k steps (2,500 updates, as in DeepMind's code and dqn_zoo), eps 1 -> 0.1 "
            "over 1M steps, 50M steps, eval eps 0.05 over 30 episodes of at most 18k frames.",
            "ALE/Pong-v5",
            dict(
                NATURE_ATARI, total_steps=50_000_000, num_envs=1, batch_size=32,
                buffer_size=1_000_000, learning_starts=50_000, train_freq=4, gradient_steps=1,
                target_update="hard", target_update_interval=2_500, loss="huber",
                huber_delta=1.0, optimizer="rmsprop", learning_rate=2.5e-4,
                rmsprop_decay=0.95, rmsprop_eps=0.01, rmsprop_centered=True,
                max_grad_norm=0.0, gamma=0.99, epsilon_schedule="linear", epsilon_start=1.0,
                epsilon_end=0.1, epsilon_steps=1_000_000, chunk_steps=10_000,
                checkpoint_every=500_000,
            ),
        ),
        Preset(
            "atari-fast",
            "DQN tuned to learn Pong within an hour or two on a small machine, after Lapan "
            "2017 (Deep Reinforcement Learning Hands-On, ch. 6: 'solve Pong in 30 minutes' on "
            "a GPU) and RLlib's tuned_examples pong-dqn.yaml: Adam lr 1e-4, replay 100k, a "
            "10k-step warm-up, target copy every 1k updates, epsilon 1 -> 0.01 over 100k "
            "steps, Double DQN, 3-step returns, Huber loss, gradient norm 10, Adam eps "
            "1.5e-4 (Rainbow's, Hessel et al. 2017), batch 32 and "
            "an update every step; the 2013 CNN (Mnih et al. 2013) on the nature preset's "
            "preprocessing and evaluation protocol. The network, batch and update frequency "
            "were picked by their update cost on a 2-core CPU "
            "(benchmarks/results/atari_update_cost.md).",
            "ALE/Pong-v5",
            dict(NATURE_ATARI, network="dqn2013_cnn", total_steps=300_000, num_envs=1,
                 batch_size=32, buffer_size=100_000, learning_starts=10_000, train_freq=1,
                 gradient_steps=1, target_update="hard", target_update_interval=1_000,
                 double_dqn=True, n_step=3, loss="huber", huber_delta=1.0, optimizer="adam",
                 learning_rate=1e-4, adam_eps=1.5e-4, max_grad_norm=10.0, gamma=0.99,
                 epsilon_schedule="linear", epsilon_start=1.0, epsilon_end=0.01,
                 epsilon_steps=100_000, chunk_steps=10_000, checkpoint_every=50_000),
        ),
        Preset(
            "dqn",
            "DQN (Mnih et al. 2015) as the env's default preset trains it, unchanged: the "
            "baseline's name in a grid such as --preset dqn,double,rainbow.",
            "CartPole-v1", {}, on_default=True,
        ),
        # One of Rainbow's parts on top of the env's default preset (Hessel et al. 2017,
        # arXiv 1710.02298, Table 1 gives the values Rainbow uses for each).
        Preset(
            "double",
            "Double DQN (van Hasselt, Guez & Silver 2016, AAAI, eq. 4): the online network "
            "picks the next action, the target network values it. On top of the env's "
            "default preset.",
            "CartPole-v1", dict(double_dqn=True), on_default=True,
        ),
        Preset(
            "dueling",
            "Dueling network (Wang et al. 2016, ICML, eq. 9): value and advantage streams, "
            "each with its own hidden layer, Q = V + A - mean(A). On top of the env's "
            "default preset.",
            "CartPole-v1", dict(dueling=True), on_default=True,
        ),
        Preset(
            "nstep",
            "n-step returns with n = 3 as in Rainbow (Hessel et al. 2017, eq. 2 and Table 1), "
            "cut at episode ends: no bootstrap past a terminal, a bootstrap from the final "
            "observation past a time limit. On top of the env's default preset.",
            "CartPole-v1", dict(n_step=3), on_default=True,
        ),
        Preset(
            "noisy",
            "Noisy nets (Fortunato et al. 2018, ICLR): factorised Gaussian noise with sigma0 "
            "= 0.5 in the head's layers, epsilon 0 (Hessel et al. 2017, Table 1). On top of "
            "the env's default preset.",
            "CartPole-v1",
            NOISY, on_default=True,
        ),
        Preset(
            "c51",
            "C51 (Bellemare, Dabney & Munos 2017, ICML, Algorithm 1): 51 atoms on [-10, 10] "
            "for clipped Atari rewards (Hessel et al. 2017, Table 1); [-100, 100] for the "
            "classic-control envs (gamma 0.99 and |r| <= 1 bound returns by 100) and for "
            "MinAtar (Obando-Ceron & Castro 2021, Revisiting Rainbow, its MinAtar configs). "
            "On top of the env's default preset.",
            "CartPole-v1",
            C51, env_overrides=WIDE_SUPPORT, on_default=True,
        ),
        Preset(
            "per",
            "Proportional prioritized replay (Schaul et al. 2016, ICLR, section 3.3 and "
            "Algorithm 1): P(i) ~ (|delta_i| + 1e-6)^0.5, importance weights with beta 0.4 -> "
            "1 over the run, normalised by the batch's largest, new transitions at the "
            "largest priority; alpha 0.5 and beta as in Rainbow (Hessel et al. 2017, Table "
            "1). On top of the env's default preset.",
            "CartPole-v1",
            PER, on_default=True,
        ),
        Preset(
            "rainbow",
            "Rainbow (Hessel et al. 2017, AAAI 2018, arXiv 1710.02298, Table 1): Double DQN, "
            "dueling, noisy nets (sigma0 0.5, eps 0), C51 (51 atoms), 3-step returns and "
            "proportional prioritized replay (alpha 0.5, beta 0.4 -> 1), on top of the env's "
            "default preset. On ALE ids also the paper's Adam (lr 6.25e-5, eps 1.5e-4), "
            "learning from 80k frames (20k steps) and a target copy every 32k frames (2,000 "
            "updates). Support [-10, 10] for clipped Atari rewards, [-100, 100] for classic "
            "control and MinAtar (see c51).",
            "CartPole-v1",
            RAINBOW_PARTS,
            env_overrides={
                **WIDE_SUPPORT,
                **{part: dict(optimizer="adam", learning_rate=6.25e-5, adam_eps=1.5e-4,
                              learning_starts=20_000, target_update_interval=2_000)
                   for part in ("ALE/", "NoFrameskip")},
            },
            on_default=True,
        ),
        Preset(
            "rainbow-minatar",
            "Rainbow on MinAtar as in Revisiting Rainbow (Obando-Ceron & Castro 2021, ICML, "
            "github.com/JohanSamir/rainbow_extend lifting_veil/Configs/rainbow_breakout.gin): "
            "the minatar preset's network and env settings with Double DQN, dueling, noisy "
            "nets, C51 (51 atoms on [-100, 100]), 3-step returns, prioritized replay (alpha "
            "0.5, beta 0.4 -> 1 as in Rainbow), Adam lr 1e-4 eps 3.125e-4, batch 32, replay "
            "1e5, learning from 1,000 steps, an update every 4 steps, a target copy every "
            "1,000 steps (250 updates), eps 1 -> 0.01 over 250k steps (Dopamine's defaults, "
            "which that config keeps).",
            "Breakout-MinAtar",
            dict(RAINBOW_PARTS, v_min=-100.0, v_max=100.0, optimizer="adam",
                 learning_rate=1e-4, adam_eps=3.125e-4, batch_size=32, buffer_size=100_000,
                 learning_starts=1_000, train_freq=4, target_update_interval=250,
                 epsilon_start=1.0, epsilon_end=0.01, epsilon_steps=250_000,
                 epsilon_delay=0),  # the minatar preset's 5,000 is MinAtar's warm-up
            on_default=True,
        ),
        Preset(
            "qrdqn",
            "QR-DQN (Dabney, Rowland, Bellemare & Munos 2018, AAAI, arXiv 1710.10044, "
            "Algorithm 1 and section 5): the return distribution as N quantiles at the "
            "midpoints tau_i = (2i - 1)/2N, fitted with the quantile Huber loss at kappa = 1, "
            "on top of the env's default preset. On ALE ids the paper's N = 200 and Adam (lr "
            "5e-5, eps 0.01/32 = 3.125e-4); elsewhere N = 50, SB3-contrib's default "
            "n_quantiles (Raffin et al., sb3_contrib QRDQN).",
            "CartPole-v1",
            dict(algo="qrdqn", num_atoms=50, huber_delta=1.0, distributional=False),
            env_overrides={part: dict(num_atoms=200, optimizer="adam", learning_rate=5e-5,
                                      adam_eps=3.125e-4)
                           for part in ("ALE/", "NoFrameskip")},
            on_default=True,
        ),
        Preset(
            "pqn-cartpole",
            "PQN (Gallici et al. 2024, 'Simplifying Deep Temporal Difference Learning', ICLR "
            "2025) with purejaxql's pqn_cartpole.yaml: 32 envs x 64 steps per rollout, 4 "
            "epochs x 16 minibatches, two LayerNorm'd layers of 256 ReLU units, RAdam lr 1e-4 "
            "annealed linearly to 0, gradient norm 10, rewards scaled by 0.1, gamma 0.99, "
            "lambda 0.95, epsilon 1 -> 0.2 over the first 20% of 500k steps. Added by deepq: "
            "the greedy policy is scored every 2 rollouts (32 episodes) and training stops "
            "once every seed scores 500, as the cartpole preset does.",
            "CartPole-v1",
            dict(PQN, network="mlp", hidden_sizes=(256, 256), total_steps=500_000,
                 num_envs=32, rollout_steps=64, num_epochs=4, num_minibatches=16,
                 learning_rate=1e-4, lr_schedule="linear", reward_scale=0.1, q_lambda=0.95,
                 epsilon_end=0.2, epsilon_fraction=0.2, select_every=4_096,
                 select_episodes=32, stop_at_return=500.0),
        ),
        Preset(
            "pqn-minatar",
            "PQN (Gallici et al. 2024, ICLR 2025) with purejaxql's pqn_minatar.yaml: 128 envs "
            "x 32 steps per rollout, 2 epochs x 32 minibatches, MinAtar's CNN (16 3x3 "
            "filters -> 128 units, Young & Tian 2019) with LayerNorm, RAdam lr 5e-4 annealed "
            "linearly to 0, gradient norm 10, gamma 0.99, lambda 0.65, epsilon 1 -> 0.05 over "
            "the first 10% of 10M steps; gymnax's MinAtar without sticky actions, as "
            "purejaxql runs it. purejaxql divides the 0/1 planes by 255; deepq feeds them "
            "as they are.",
            "Breakout-MinAtar",
            dict(PQN, network="minatar_cnn", total_steps=10_000_000, num_envs=128,
                 rollout_steps=32, num_epochs=2, num_minibatches=32, learning_rate=5e-4,
                 lr_schedule="linear", q_lambda=0.65, epsilon_end=0.05, epsilon_fraction=0.1,
                 sticky_actions=0.0, full_action_set=False, eval_episodes=100,
                 chunk_steps=163_840, checkpoint_every=1_000_000, select_every=0),
        ),
        Preset(
            "pqn-atari",
            "PQN (Gallici et al. 2024, ICLR 2025) with purejaxql's pqn_atari.yaml: 128 envs x "
            "32 steps per rollout, 2 epochs x 32 minibatches, the Nature CNN with LayerNorm, "
            "RAdam lr 2.5e-4, gradient norm 10, gamma 0.99, lambda 0.65, epsilon 1 -> 0.001 "
            "over the first 10% of 10M steps; envpool's settings there: frame skip 4, up to "
            "30 no-op starts, a lost life terminal, rewards clipped, no sticky actions; the "
            "ALE preprocessing and evaluation protocol of the nature preset (Mnih et al. "
            "2015).",
            "ALE/Pong-v5",
            dict(PQN, **NATURE_ATARI, total_steps=10_000_000, num_envs=128, rollout_steps=32,
                 num_epochs=2, num_minibatches=32, learning_rate=2.5e-4,
                 lr_schedule="constant", q_lambda=0.65, epsilon_end=0.001,
                 epsilon_fraction=0.1, chunk_steps=100_000, checkpoint_every=1_000_000,
                 select_every=0),
        ),
        Preset(
            "reinforce",
            "REINFORCE (Williams 1992) with the settings of Karpathy's pg-pong.py (2016, "
            "karpathy.github.io/2016/05/31/rl): one hidden layer of 200 ReLU units without "
            "biases, weights N(0, 1/fan-in), RMSProp decay 0.99 with eps 1e-5 outside the "
            "square root, an update per batch of 10 episodes on the summed log-likelihood "
            "gradient, gamma 0.99, returns standardised over the batch; a softmax policy over "
            "the env's actions, a learning rate of 3e-3 annealed linearly to 0 over 1,000 "
            "episodes instead of a constant 1e-4, and a learned baseline V(s) (Williams "
            "1992's REINFORCE with a baseline; pg-pong.py has none). Tuned on CartPole-v1: a "
            "constant 1e-4 scores ~53 after 1,000 episodes; a constant 3e-3 leaves 1 or 2 "
            "seeds of 10 below 475, its policy still swinging; annealed without a baseline, "
            "24 of the 30 seeds 20-49 reach 475 (mean 469); with the baseline 30 of 30, and 50 "
            "of 50 on the held-out seeds 50-99 (min 486).",
            "CartPole-v1",
            dict(KARPATHY, policy="softmax", learning_rate=3e-3, lr_schedule="linear",
                 reset_on_reward=False, total_episodes=1_000, eval_episodes=100,
                 baseline=True),
        ),
        Preset(
            "karpathy-pong",
            "Pong from pixels (Karpathy 2016, karpathy.github.io/2016/05/31/rl, pg-pong.py): "
            "gym's Pong-v0 (frame skip 2-4 at random, sticky actions 0.25), rows 35:195 of "
            "the red channel downsampled by 2, background colours 144 and 109 erased, the "
            "rest set to 1, the difference of the last two 80x80 frames as input; a "
            "Bernoulli policy over UP/DOWN from one hidden layer of 200 ReLU units without "
            "biases; discounted returns (gamma 0.99) restarting at every point, standardised "
            "over the batch (pg-pong.py standardises each episode's returns: "
            "standardize_returns=episode); RMSProp lr 1e-4 decay 0.99 eps 1e-5, an update "
            "every 10 episodes, a checkpoint every 100. Karpathy's agent beat the built-in "
            "AI after ~8,000 episodes (3 nights on a laptop).",
            "KarpathyPong-v0",
            dict(KARPATHY, policy="bernoulli", learning_rate=1e-4, reset_on_reward=True,
                 total_episodes=10_000, eval_episodes=10, sparse_inputs=True),
        ),
    ]
}

DEFAULT_PRESET_FOR_ENV = {
    "KarpathyPong-v0": "karpathy-pong",
    "CartPole-v1": "cartpole",
    "Acrobot-v1": "zoo-acrobot",
    "MountainCar-v0": "zoo-mountaincar",
    **{f"{game}-MinAtar": "minatar"
       for game in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")},
}


def base_config(env_id: str | None, preset: str | None, algo: str | None = None) -> Config:
    """The starting config: the named preset, else the env's default preset for `algo`,
    else Config()."""
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
        return PRESETS[preset].config(env_id)
    env_id = env_id or Config.env_id
    name = default_preset(env_id, algo)
    return PRESETS[name].config(env_id) if name else Config(env_id=env_id)


def default_preset(env_id: str, algo: str | None = None) -> str | None:
    """The preset an env trains with when none is named: its own, `nature` for ALE ids;
    for algo=reinforce, `reinforce` unless the env's own preset is a REINFORCE one; for
    algo=pqn, `pqn-atari` on ALE ids, `pqn-minatar` on MinAtar, `pqn-cartpole` elsewhere."""
    name = DEFAULT_PRESET_FOR_ENV.get(env_id)
    if name is None:
        name = "nature" if is_atari(env_id) else None
    own_algo = PRESETS[name].overrides.get("algo", "dqn") if name else "dqn"
    if algo == "reinforce" and own_algo != "reinforce":
        return "reinforce"
    if algo == "pqn" and own_algo != "pqn":
        if is_atari(env_id):
            return "pqn-atari"
        return "pqn-minatar" if env_id.endswith("-MinAtar") else "pqn-cartpole"
    return name




def config_for(env_id: str | None = None, preset: str | None = None, algo: str | None = None,
               **overrides: Any) -> Config:
    """The config a run of `env_id` trains with: the named preset (else the env's default
    preset for `algo`, else Config()'s defaults), then `overrides` (Config fields), checked.
    `deepq train --env ENV --preset P --set k=v` resolves its config here too."""
    cfg = base_config(env_id, preset, algo)
    changes = dict(overrides)
    if env_id is not None:
        changes["env_id"] = env_id
    if algo is not None:
        changes["algo"] = algo
    try:
        return validated(cfg.replace(**changes).validated())
    except TypeError as exc:  # a field name that Config does not have
        raise UserError(f"{exc}: see `deepq train --help` for the fields") from None
