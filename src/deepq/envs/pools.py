"""Gymnasium envs that play whole episodes side by side, in this process or in workers.

REINFORCE's host driver (drivers/episodic.py) steps only the envs whose episode is still
running. `WorkerEnvs` splits them over processes (`env_workers`) for envs whose step
outweighs a pipe round trip, such as the ALE; this module imports no JAX, so the workers
start light.
"""

from __future__ import annotations

import numpy as np

from deepq.envs import make_gymnasium


class LocalEnvs:
    """`n` Gymnasium envs in this process; `step` steps only the envs still playing."""

    def __init__(self, env_id: str, n: int):
        self.envs = [make_gymnasium(env_id) for _ in range(n)]
        self.obs: np.ndarray | None = None

    def reset(self, seeds: list[int]) -> np.ndarray:
        self.obs = np.stack([np.asarray(env.reset(seed=int(s))[0])
                             for env, s in zip(self.envs, seeds)])
        return self.obs.copy()

    def step(self, actions: np.ndarray, alive: np.ndarray):
        """(obs, reward, ended) of every env; envs not alive keep their last observation."""
        reward = np.zeros(len(self.envs), np.float32)
        ended = np.zeros(len(self.envs), bool)
        for i in np.flatnonzero(alive):
            obs, reward[i], terminated, truncated, _ = self.envs[i].step(int(actions[i]))
            self.obs[i] = obs
            ended[i] = terminated or truncated
        return self.obs.copy(), reward, ended

    def close(self) -> None:
        for env in self.envs:
            env.close()


class WorkerEnvs:
    """The same `n` envs split over `workers` processes that step their share at once.

    An env's episode depends only on its seed and actions, so the numbers are those of
    LocalEnvs; only the wall time changes (for envs whose step outweighs a pipe round trip,
    such as the ALE)."""

    def __init__(self, env_id: str, n: int, workers: int):
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        # Each worker is `python -m deepq.envs.pools` on one end of a socket pair: a fresh
        # interpreter (no fork of JAX's threads, no re-import of the caller's main module).
        self.parts = np.array_split(np.arange(n), min(workers, n))
        self.pipes, self.procs = [], []
        for part in self.parts:
            ours, theirs = socket.socketpair()
            proc = subprocess.Popen(
                [sys.executable, "-m", "deepq.envs.pools", env_id, str(len(part)),
                 str(theirs.fileno())], pass_fds=[theirs.fileno()], stdout=subprocess.DEVNULL)
            theirs.close()
            self.pipes.append(Connection(ours.detach()))
            self.procs.append(proc)

    def _call(self, messages: list) -> list:
        for pipe, message in zip(self.pipes, messages):
            pipe.send(message)
        replies = [pipe.recv() for pipe in self.pipes]
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    def reset(self, seeds: list[int]) -> np.ndarray:
        seeds = np.asarray(seeds)
        return np.concatenate(self._call([("reset", seeds[p]) for p in self.parts]))

    def step(self, actions: np.ndarray, alive: np.ndarray):
        replies = self._call([("step", actions[p], alive[p]) for p in self.parts])
        return tuple(np.concatenate(parts) for parts in zip(*replies))

    def close(self) -> None:
        for pipe, proc in zip(self.pipes, self.procs):
            try:
                pipe.send(("close",))
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except Exception:
                proc.kill()
            pipe.close()


def _env_worker(pipe, env_id: str, n: int) -> None:
    """A WorkerEnvs process: LocalEnvs driven over a pipe until ("close",) or EOF."""
    envs = None
    try:
        envs = LocalEnvs(env_id, n)
        while True:
            command, *args = pipe.recv()
            if command == "close":
                break
            try:
                pipe.send(envs.reset(*args) if command == "reset" else envs.step(*args))
            except Exception as exc:  # reported to the driver, which raises it
                pipe.send(RuntimeError(f"env worker: {type(exc).__name__}: {exc}"))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        if envs is not None:
            envs.close()


if __name__ == "__main__":
    import sys
    from multiprocessing.connection import Connection

    _env_worker(Connection(int(sys.argv[3])), sys.argv[1], int(sys.argv[2]))
