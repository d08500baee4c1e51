"""PQN's drivers (agents/pqn.py): rollouts of every env, then updates on them.

Jitted (gymnax envs): rollouts and updates in one compiled chunk per seed, seeds vmapped and
split over the cores as the DQN driver's. Host (Gymnasium and ALE ids): the envs stepped in
Python, one jitted call per step to act and one per rollout to learn.

One iteration is still one step of the `num_envs` envs, so the clock, the metrics rows, the
selection between chunks and the checkpoints are the DQN drivers'; a chunk holds whole
rollouts of `rollout_steps` iterations, and the run lasts whole rollouts (its total_steps
rounded up to a multiple of num_envs x rollout_steps).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from deepq.agents.base import AgentState
from deepq.agents.pqn import Rollout, lambda_returns, rollouts
from deepq.config import Config
from deepq.drivers.base import Carry, RunState, init_best, keep_better
from deepq.drivers.common import StepDriver, StepLog, explore_rate, map_seeds
from deepq.drivers.host import EnvStep, GymnasiumEnvs, empty_logs
from deepq.drivers.jitted import EnvLoop, JittedDriver
from deepq.envs import EnvInfo, family, seeds
from deepq.envs.atari import AtariEnvs
from deepq.evaluate import evaluate
from deepq.replay import Transition


class RolloutLearner(NamedTuple):
    """One seed's learning state: the agent and its key, and the last update's metrics."""

    agent: AgentState
    key: jax.Array
    last_loss: jnp.ndarray
    last_q: jnp.ndarray


def learn_rollout(cfg: Config, agent: Any, learner: RolloutLearner, steps: Transition,
                  weight: jnp.ndarray) -> RolloutLearner:
    """PQN's update on one seed's rollout: `steps` [T, E, ...] in time order, each with its
    next observation (the final one where an episode ended) and `weight` [T, E] (0 for a
    step that only reset its env). Q(lambda) returns under the rollout's params, then
    agent.update's epochs x minibatches."""
    T, E = steps.reward.shape
    flat = lambda x: x.reshape((T * E,) + x.shape[2:])  # noqa: E731
    params = learner.agent.params
    # Q of the next observations one step (E envs) at a time: at once, the Nature CNN's
    # patch tensor for a 128 x 32 Atari rollout is 1.7 GB, which malloc hands back to the
    # OS and page-faults in again every rollout (900k faults, about a fifth of a learn call).
    next_q = jax.lax.map(lambda obs: agent.q_values(params, obs).max(axis=-1), steps.next_obs)
    reward = jnp.clip(steps.reward, -1.0, 1.0) if cfg.clip_rewards else steps.reward
    targets = lambda_returns(reward * cfg.reward_scale, steps.terminated, steps.last, next_q,
                             cfg.gamma, cfg.q_lambda)
    batch = Rollout(flat(steps.obs), flat(steps.action), flat(targets), flat(weight))
    key, k_update = jax.random.split(learner.key)
    agent_state, metrics = agent.update(learner.agent, batch, k_update)
    return RolloutLearner(agent_state, key, metrics["loss"], metrics["q_mean"])


def rollout_chunk(cfg: Config, chunk_iterations: int, total_iterations: int) -> int:
    """Iterations per chunk: `chunk_iterations` in whole rollouts, at most the run."""
    T = cfg.rollout_steps
    return min(max(chunk_iterations // T, 1) * T, total_iterations)


class JittedRolloutDriver(JittedDriver):
    has_replay = False

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info)
        self.total_iterations = rollouts(cfg) * cfg.rollout_steps
        self.chunk_iterations = rollout_chunk(cfg, self.chunk_iterations,
                                              self.total_iterations)

    def _init_one_seed(self, key: jax.Array) -> Carry:
        cfg, env, params = self.cfg, self.env, self.env_params
        k_learner, k_env, k_reset, k_best = jax.random.split(key, 4)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_reset, cfg.num_envs), params)
        obs = obs.astype(self.info.obs_dtype)
        k_agent, k_learner = jax.random.split(k_learner)
        nan = jnp.full((), jnp.nan, jnp.float32)
        learner = RolloutLearner(self.agent.init(k_agent, obs[0]), k_learner, nan, nan)
        zeros = jnp.zeros(cfg.num_envs, jnp.float32)
        no_action = jnp.zeros(cfg.num_envs, jnp.int32)
        loop = EnvLoop(state, obs, k_env, zeros, no_action, no_action)
        return Carry(learner, init_best(learner.agent.params, k_best), loop)

    def _iterate(self, carry: Carry, start: jnp.ndarray, fill_start: jnp.ndarray):
        T = self.cfg.rollout_steps

        def body(c: Carry, it: jnp.ndarray):
            # The last chunk may run past the end of the run: those rollouts do nothing.
            return jax.lax.cond(it < self.total_iterations, lambda c: self._rollout(c, it),
                                lambda c: (c, _idle_logs(T, self.cfg.num_envs)), c)

        starts = start + T * jnp.arange(self.chunk_iterations // T, dtype=jnp.int32)
        carry, logs = jax.lax.scan(body, carry, starts)  # logs [R, T, ...]
        return carry, jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), logs)

    def _rollout(self, carry: Carry, it: jnp.ndarray) -> tuple[Carry, StepLog]:
        """`rollout_steps` steps of every env from iteration `it` at one epsilon, then
        PQN's update on their Q(lambda) returns."""
        cfg, agent = self.cfg, self.agent
        learner, best, loop = carry
        params = learner.agent.params
        eps = explore_rate(cfg, it, learner.agent.updates)

        def one_step(c, _):
            key, loop = c
            key, k_act = jax.random.split(key)
            actions = agent.act(params, loop.obs, k_act, eps)
            loop, transitions, done, ret, length = self._step_envs(loop, actions)
            log = StepLog(done, ret, length, eps, learner.last_loss, learner.last_q)
            return (key, loop), (transitions, log)

        (key, loop), (steps, logs) = jax.lax.scan(one_step, (learner.key, loop), None,
                                                  cfg.rollout_steps)
        learner = learn_rollout(cfg, agent, learner._replace(key=key), steps,
                                jnp.ones(steps.reward.shape, jnp.float32))
        return Carry(learner, best, loop), logs


def _idle_logs(steps: int, num_envs: int) -> Any:
    nan = jnp.full((steps,), jnp.nan, jnp.float32)
    return StepLog(jnp.zeros((steps, num_envs), bool), jnp.zeros((steps, num_envs), jnp.float32),
                   jnp.zeros((steps, num_envs), jnp.int32), nan, nan, nan)


class AtariRolloutEnvs:
    """ALE games for PQN (envs/atari.py): each step's Transition holds whole observations;
    the step after a game over only resets its game, and `counted` marks it out."""

    def __init__(self, cfg: Config, info: EnvInfo):
        self.envs = AtariEnvs(cfg, cfg.num_seeds * cfg.num_envs, training=True)

    def reset(self, env_seeds: list[int]) -> np.ndarray:
        return self.envs.reset(env_seeds)

    def restart(self, mask: np.ndarray, env_seeds: list[int]) -> np.ndarray:
        return self.envs.restart(mask, env_seeds)

    def step(self, obs: np.ndarray, actions: np.ndarray) -> EnvStep:
        out = self.envs.step(actions)
        record = Transition(obs, actions.astype(np.int32), out.reward, out.obs,
                            out.terminated.astype(np.float32),
                            out.game_over.astype(np.float32))
        return EnvStep(record, out.obs, out.reward, out.game_over, ~out.ignored)

    def close(self) -> None:
        self.envs.close()


# On a resume the ALE games start afresh, all at once: without sticky actions and at a small
# epsilon, the games of a trained agent then play in lockstep (envs with the same number of
# no-op starts play the same game), every rollout holds one phase of a game, and PQN, which
# learns from nothing else, unlearns (a Pong run fell from a return of 19 to -10 within one
# episode of resuming). So a resumed run first restarts each game at its own step of the
# first STAGGER_STEPS, about one game of Pong, playing the restored policy without learning.
STAGGER_STEPS = 2_000


class HostRolloutDriver(StepDriver):
    """PQN on the host (Gymnasium and ALE ids): every env of every seed stepped in lockstep,
    one jitted call per step to act, one per rollout to learn (vmapped over seeds)."""

    kind = "host"
    has_replay = False

    def __init__(self, cfg: Config, info: EnvInfo):
        super().__init__(cfg, info)
        self.total_iterations = rollouts(cfg) * cfg.rollout_steps
        self.chunk_iterations = rollout_chunk(cfg, self.chunk_iterations,
                                              self.total_iterations)
        self._init = jax.jit(jax.vmap(self._init_one_seed))
        self._act = jax.jit(map_seeds(self._act_one_seed, (0, 0, None)))
        self._learn = jax.jit(map_seeds(self._learn_one_seed), donate_argnums=0)
        self._keep_better = jax.jit(jax.vmap(keep_better))

    def _init_one_seed(self, key: jax.Array) -> Carry:
        k_agent, k_learner, k_best = jax.random.split(key, 3)
        obs_example = jnp.zeros(self.info.obs_shape, self.info.obs_dtype)
        nan = jnp.full((), jnp.nan, jnp.float32)
        learner = RolloutLearner(self.agent.init(k_agent, obs_example), k_learner, nan, nan)
        return Carry(learner, init_best(learner.agent.params, k_best))

    def _act_one_seed(self, carry: Carry, obs: jnp.ndarray, it: jnp.ndarray):
        learner = carry.learner
        key, k_act = jax.random.split(learner.key)
        eps = explore_rate(self.cfg, it, learner.agent.updates)
        actions = self.agent.act(learner.agent.params, obs, k_act, eps)
        return actions, eps, carry._replace(learner=learner._replace(key=key))

    def _learn_one_seed(self, carry: Carry, steps: Transition, weight: jnp.ndarray) -> Carry:
        learner = learn_rollout(self.cfg, self.agent, carry.learner, steps, weight)
        return carry._replace(learner=learner)

    def initial_state(self) -> RunState:
        keys = jnp.stack([jax.random.PRNGKey(s) for s in self.cfg.seeds])
        return RunState(self._init(keys), 0)

    def chunks(self, state: RunState) -> Iterator[tuple[RunState, dict[str, np.ndarray]]]:
        cfg = self.cfg
        S, E, T = cfg.num_seeds, cfg.num_envs, cfg.rollout_steps
        by_seed = lambda x: x.reshape((S, E) + x.shape[1:])  # noqa: E731
        envs = AtariRolloutEnvs(cfg, self.info) if family(self.info).pixels \
            else GymnasiumEnvs(cfg, self.info)
        try:
            # Env seeds differ per seed and per resume point, and repeat across reruns.
            env_seeds = seeds.host_training(cfg.seeds, E, state.iteration)
            obs = envs.reset(env_seeds)
            carry, it = state.carry, state.iteration
            ep_ret = np.zeros((S, E), np.float32)
            ep_len = np.zeros((S, E), np.int32)
            if it > 0 and isinstance(envs, AtariRolloutEnvs):
                obs, carry = self.stagger(envs, env_seeds, obs, carry, it, ep_ret, ep_len)
            while it < self.total_iterations and not self.stopped(RunState(carry, it)):
                K = min(self.chunk_iterations, self.total_iterations - it)
                logs = empty_logs(S, K, E)
                for k0 in range(0, K, T):
                    records, weights, start = [], [], it  # one epsilon per rollout
                    for k in range(k0, k0 + T):
                        out, eps, carry = self._play(envs, carry, obs, start, ep_ret, ep_len)
                        records.append(jax.tree.map(by_seed, out.record))
                        weights.append(out.counted.reshape(S, E).astype(np.float32))
                        obs = out.next_obs
                        done = out.episode_end.reshape(S, E)
                        logs["done"][:, k] = done
                        logs["episode_return"][:, k] = ep_ret
                        logs["episode_length"][:, k] = ep_len
                        logs["epsilon"][:, k] = eps
                        logs["loss"][:, k] = np.asarray(carry.learner.last_loss)
                        logs["q_mean"][:, k] = np.asarray(carry.learner.last_q)
                        ep_ret[done] = 0.0
                        ep_len[done] = 0
                        it += 1
                    # [S, T, E, ...]: each seed's rollout in time order
                    steps = jax.tree.map(lambda *xs: np.stack(xs, axis=1), *records)
                    carry = self._learn(carry, steps, np.stack(weights, axis=1))
                if cfg.select_every:
                    carry = self._select(carry, it)
                state = RunState(carry, it)
                yield state, logs
        finally:
            envs.close()

    def _play(self, envs: Any, carry: Carry, obs: np.ndarray, eps_at: int, ep_ret: np.ndarray,
              ep_len: np.ndarray) -> tuple[EnvStep, np.ndarray, Carry]:
        """One step of every env, acting at iteration `eps_at`'s epsilon; the step's
        counted reward and length are added to each env's game (`ep_ret`, `ep_len` [S, E]),
        which the caller zeroes where a game ended. Returns the step, epsilon, carry."""
        S, E = self.cfg.num_seeds, self.cfg.num_envs
        actions, eps, carry = self._act(carry, obs.reshape((S, E) + obs.shape[1:]),
                                        jnp.int32(eps_at))
        actions, eps = jax.device_get((actions, eps))
        out = envs.step(obs, actions.reshape(S * E))
        counted = out.counted.reshape(S, E)
        ep_ret += np.where(counted, out.reward.reshape(S, E), 0.0)
        ep_len += counted
        return out, eps, carry

    def stagger(self, envs: AtariRolloutEnvs, env_seeds: list[int], obs: np.ndarray,
                carry: Carry, it: int, ep_ret: np.ndarray, ep_len: np.ndarray,
                steps: int | None = None) -> tuple[np.ndarray, Carry]:
        """Play `steps` (STAGGER_STEPS) steps of the policy at iteration `it`'s epsilon,
        restarting each env's game (its seed again) at a step of its own, drawn uniformly
        from a generator seeded by (seed, it). Nothing is learned or logged; `ep_ret` and
        `ep_len` [S, E] count each env's game from its restart, so the first episode
        logged after a resume is a whole game. Returns the observations and the carry."""
        S, E = self.cfg.num_seeds, self.cfg.num_envs
        steps = STAGGER_STEPS if steps is None else steps
        restart_at = np.random.default_rng([self.cfg.seed, it]).integers(0, steps, S * E)
        env_seeds = np.asarray(env_seeds)
        for k in range(steps):
            mask = restart_at == k
            if mask.any():
                obs = envs.restart(mask, env_seeds[mask])
                ep_ret[mask.reshape(S, E)], ep_len[mask.reshape(S, E)] = 0.0, 0
            out, _, carry = self._play(envs, carry, obs, it, ep_ret, ep_len)
            done = out.episode_end.reshape(S, E)  # a game that ends here is not logged
            ep_ret[done], ep_len[done] = 0.0, 0
            obs = out.next_obs
        return obs, carry

    def _select(self, carry: Carry, it: int) -> Carry:
        """Greedy episodes on fresh reference envs; every seed keeps its best params."""
        cfg = self.cfg
        params = carry.learner.agent.params
        returns = evaluate(self.agent.act, params, cfg, self.info, cfg.select_episodes,
                           cfg.eval_epsilon, seeds.host_selection(cfg.seed, it))
        score = jnp.asarray(returns.mean(axis=1), jnp.float32)
        return carry._replace(best=self._keep_better(carry.best, params, score))
