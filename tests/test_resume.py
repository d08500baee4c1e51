"""Checkpoints round-trip, and a run killed mid-way then resumed ends bit-identical."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import checkpoint
from deepq.errors import UserError
from tests.helpers import TINY, kill_after_first_checkpoint, run_deepq

# Selection every 1000 steps: the kept params and their score resume exactly too.
RUN_ARGS = [*TINY, "--total-steps", "30000", "--set", "checkpoint_every=500", "--no-artifacts",
            "--seeds", "2", "--set", "select_every=1000", "--set", "select_episodes=4"]


def _leaves(ckpt: Path) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(checkpoint.read_raw(ckpt)["state"])]


def test_checkpoint_round_trip_and_atomicity(tmp_path):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "n": jnp.int32(7)}
    path = checkpoint.save(tmp_path, 10, state, {"iteration": 10})
    restored, meta = checkpoint.restore(path, {"w": jnp.zeros((2, 3)), "n": jnp.int32(0)})
    np.testing.assert_array_equal(restored["w"], state["w"])
    assert int(restored["n"]) == 7 and meta == {"iteration": 10}
    assert [p.name for p in tmp_path.joinpath("checkpoints").iterdir()] == [path.name]  # no temp
    with pytest.raises(UserError, match="does not match"):
        checkpoint.restore(path, {"w": jnp.zeros((3, 3)), "n": jnp.int32(0)})
    for step in (20, 30, 40):
        checkpoint.save(tmp_path, step, state, {}, keep=2)
    assert [int(p.stem.split("_")[1]) for p in checkpoint.list_checkpoints(tmp_path)] == [30, 40]


def test_same_seed_same_numbers(tmp_path):
    for name in ("a", "b"):
        run_deepq("train", "--out", str(tmp_path / name), *TINY, "--total-steps", "2000",
                  "--no-artifacts", check=True)
    a = _leaves(checkpoint.latest(tmp_path / "a"))
    b = _leaves(checkpoint.latest(tmp_path / "b"))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_killed_run_resumes_bit_identical(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_deepq("train", "--out", str(straight), *RUN_ARGS, check=True)

    kept = kill_after_first_checkpoint(killed, *RUN_ARGS)
    assert kept, "no checkpoint was written before the kill"
    cut = int(kept[-1].stem.split("_")[1])
    assert cut < 30000, "the run finished before it was killed; the test proves nothing"

    run_deepq("train", "--resume", str(killed), "--quiet", "--no-artifacts", check=True)
    a = _leaves(checkpoint.latest(straight))
    b = _leaves(checkpoint.latest(killed))
    assert len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)), f"diverged after resume at {cut}"

    def episodes(run):  # metrics rows (minus timing) are logged once each, as if never cut
        lines = (run / "metrics.csv").read_text().splitlines()
        return [",".join(line.split(",")[:-1]) for line in lines]

    assert episodes(straight) == episodes(killed)
    # The Q-value trace too: same held-out states, every chunk's value logged once.
    assert (straight / "qtrace.csv").read_text() == (killed / "qtrace.csv").read_text()


def test_resume_without_replay_continues(tmp_path):
    run = tmp_path / "run"
    run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1000", "--no-artifacts",
              "--set", "save_replay=false", check=True)
    raw = checkpoint.read_raw(checkpoint.latest(run))
    assert "replay" not in raw["state"]["carry"]["learner"]
    run_deepq("train", "--resume", str(run), "--total-steps", "2000", "--quiet",
              "--no-artifacts", check=True)
    assert checkpoint.latest(run).name == "step_000000002000.msgpack"
