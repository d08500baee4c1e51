"""Each algorithm's own checks (agents/*.validate): what each refuses, at the edge of what
it accepts, and the whole one-line message that names the problem and the fix."""

import pytest

from deepq.agents import dqn, pqn, qrdqn, reinforce
from deepq.config import Config
from deepq.errors import UserError

REINFORCE = Config(algo="reinforce", select_every=0)
PQN = Config(algo="pqn", num_envs=4, rollout_steps=8, num_minibatches=4)

REFUSED = [
    (dqn.validate, Config(learning_starts=100, total_steps=100),
     "learning_starts=100 is not below total_steps=100: the agent would never learn; lower "
     "learning_starts or raise total_steps"),
    (qrdqn.validate, Config(algo="qrdqn", num_atoms=1),
     "num_atoms (QR-DQN's quantiles) must be at least 2, got 1"),
    (qrdqn.validate, Config(algo="qrdqn", distributional=True),
     "algo=qrdqn has its own distributional head (quantiles): drop distributional=true, C51's"),
    (qrdqn.validate, Config(algo="qrdqn", network="per_action"),
     "algo=qrdqn needs N outputs per action: use network=mlp or a CNN"),
    (qrdqn.validate, Config(algo="qrdqn", learning_starts=50, total_steps=10),
     "learning_starts=50 is not below total_steps=10: the agent would never learn; lower "
     "learning_starts or raise total_steps"),
    (reinforce.validate, REINFORCE.replace(network="nature_cnn"),
     "algo=reinforce uses network=mlp, got network=nature_cnn"),
    (reinforce.validate, REINFORCE.replace(weight_init="torch"),
     "algo=reinforce initialises as Karpathy's network: drop weight_init=torch"),
    *[(reinforce.validate, REINFORCE.replace(**{part: True}),
       "dueling, noisy, distributional and prioritized are DQN parts: turn them off with "
       "algo=reinforce") for part in ("dueling", "noisy", "distributional", "prioritized")],
    (reinforce.validate, REINFORCE.replace(select_every=1000),
     "select_every is DQN's model selection: set it to 0 with algo=reinforce"),
    (reinforce.validate, REINFORCE.replace(baseline_coef=-0.5),
     "baseline_coef must be >= 0, got -0.5"),
    (pqn.validate, PQN.replace(num_minibatches=5),
     "num_minibatches=5 does not divide a rollout's num_envs x rollout_steps = 32 steps: pick "
     "a divisor"),
    (pqn.validate, PQN.replace(q_lambda=-0.1), "q_lambda must be in [0, 1], got -0.1"),
    (pqn.validate, PQN.replace(q_lambda=1.01), "q_lambda must be in [0, 1], got 1.01"),
    (pqn.validate, PQN.replace(reward_scale=0.0), "reward_scale must be > 0, got 0.0"),
    (pqn.validate, PQN.replace(n_step=3),
     "algo=pqn does not take n_step=3: PQN learns from Q(lambda) returns of on-policy "
     "rollouts; set n_step=1"),
    *[(pqn.validate, PQN.replace(**{part: True}),
       f"algo=pqn does not take {part}=True: PQN learns from Q(lambda) returns of on-policy "
       f"rollouts; set {part}=False")
      for part in ("distributional", "noisy", "dueling", "prioritized")],
    (pqn.validate, PQN.replace(exploration="boltzmann"),
     "algo=pqn does not take exploration='boltzmann': PQN learns from Q(lambda) returns of "
     "on-policy rollouts; set exploration=epsilon_greedy"),
    (pqn.validate, PQN.replace(network="per_action"),
     "algo=pqn does not take network=per_action: use mlp or a CNN"),
]


@pytest.mark.parametrize("check,cfg,message", REFUSED, ids=range(len(REFUSED)))
def test_each_refusal_says_what_and_how_to_fix_it(check, cfg, message):
    with pytest.raises(UserError) as err:
        check(cfg)
    assert str(err.value) == message


ACCEPTED = [
    (dqn.validate, Config(learning_starts=99, total_steps=100)),
    (qrdqn.validate, Config(algo="qrdqn", num_atoms=2)),
    (reinforce.validate, REINFORCE.replace(baseline_coef=0.0)),
    (reinforce.validate, REINFORCE),
    (pqn.validate, PQN.replace(q_lambda=0.0, num_minibatches=32)),
    (pqn.validate, PQN.replace(q_lambda=1.0, num_minibatches=1)),
]


@pytest.mark.parametrize("check,cfg", ACCEPTED, ids=range(len(ACCEPTED)))
def test_the_edges_of_what_each_algorithm_accepts(check, cfg):
    assert check(cfg) is None
