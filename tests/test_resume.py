"""Checkpoints round-trip, and a run killed mid-way then resumed ends bit-identical.

The jitted driver's state holds its envs, so a resumed run ends bit-identical to one never
interrupted. The host driver restarts its Gymnasium/ALE episodes on resume (its envs cannot be
saved), so its reference is an uninterrupted run held in memory whose episodes restart at the
same step (tests/helpers.host_reference): it never goes through a checkpoint file.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq import checkpoint
from deepq.errors import UserError
from tests.helpers import (
    TINY,
    flat_state,
    host_reference,
    kill_after_first_checkpoint,
    metrics_rows,
    run_deepq,
    tree_snapshot,
)

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


@pytest.mark.e2e
def test_same_seed_same_numbers(tmp_path):
    for name in ("a", "b"):
        run_deepq("train", "--out", str(tmp_path / name), *TINY, "--total-steps", "2000",
                  "--no-artifacts", check=True)
    a = _leaves(checkpoint.latest(tmp_path / "a"))
    b = _leaves(checkpoint.latest(tmp_path / "b"))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_resume_without_replay_continues(tmp_path):
    run = tmp_path / "run"
    run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1000", "--no-artifacts",
              "--set", "save_replay=false", check=True)
    raw = checkpoint.read_raw(checkpoint.latest(run))
    assert "replay" not in raw["state"]["carry"]["learner"]
    run_deepq("train", "--resume", str(run), "--total-steps", "2000", "--quiet",
              "--no-artifacts", check=True)
    assert checkpoint.latest(run).name == "step_000000002000.msgpack"


# Breakout through the dqn2013 preset, shrunk: 36x36 frames (44x36 cropped from row 4), a
# 250-transition ring that wraps before the end, an update every step from step 32, greedy
# actions from step 150, episodes truncated at 60 agent steps so that several end.
PIXEL_ARGS = ["--env", "ALE/Breakout-v5", "--preset", "dqn2013", "--total-steps", "300",
              "--set", "frame_resize=44,36", "--set", "frame_crop_top=4",
              "--set", "buffer_size=250", "--set", "batch_size=16", "--set", "learning_starts=32",
              "--set", "epsilon_steps=150", "--set", "max_episode_frames=240",
              "--set", "chunk_steps=50", "--set", "checkpoint_every=100",
              "--set", "qtrace_states=0", "--quiet", "--no-artifacts"]
# CartPole on Gymnasium through the host driver (its preset steps 4 envs per seed).
HOST_CARTPOLE_ARGS = [*TINY, "--backend", "gymnasium", "--total-steps", "3000",
                      "--set", "checkpoint_every=1000", "--set", "qtrace_states=0",
                      "--no-artifacts"]


def _step(ckpt: Path) -> int:
    return int(ckpt.stem.split("_")[1])


def _differing(got: dict, want: dict) -> list[str]:
    assert sorted(got) == sorted(want), set(got) ^ set(want)
    return [k for k in want if not np.array_equal(np.asarray(got[k]), np.asarray(want[k]))]


def _host_kill_resume(tmp_path: Path, args: list[str], total: int) -> tuple[dict, int]:
    """SIGKILL a host-driver run after its first checkpoint, resume it, and check it against
    the in-memory reference: the checkpoint the kill left is the uninterrupted run's state at
    that step (params, optimizer, replay, sum tree, keys, clocks), and the resumed run ends
    on the reference's final state and metrics rows. Returns (checkpoint at the cut, cut)."""
    killed = tmp_path / "killed"
    kept = kill_after_first_checkpoint(killed, *args)
    assert kept, "no checkpoint was written before the kill"
    cut = _step(kept[-1])
    assert cut < total, "the run finished before it was killed; the test proves nothing"
    at_cut = flat_state(checkpoint.read_raw(kept[-1])["state"])  # read before rotation
    run_deepq("train", "--resume", str(killed), "--quiet", "--no-artifacts", check=True)
    ref = host_reference(killed, cut, tmp_path / "reference.msgpack")

    assert not _differing(at_cut, ref["cut"]), f"the checkpoint at {cut} is not the run's state"
    final = checkpoint.latest(killed)
    assert _step(final) == total
    bad = _differing(flat_state(checkpoint.read_raw(final)["state"]), ref["final"])
    assert not bad, f"diverged after resume at {cut}: {bad}"
    assert metrics_rows(killed) == ref["rows"]
    ends = [int(row[1]) for row in ref["rows"][1:]]  # env_step of each logged episode
    assert min(ends) <= cut < max(ends), "episodes must end before and after the cut"
    return at_cut, cut


@pytest.mark.e2e
@pytest.mark.parametrize("prioritized", [False, True], ids=["uniform", "prioritized"])
def test_killed_host_pixel_run_resumes_bit_identical(tmp_path, prioritized):
    pytest.importorskip("ale_py")
    args = [*PIXEL_ARGS, "--set", f"prioritized={str(prioritized).lower()}"]
    at_cut, cut = _host_kill_resume(tmp_path, args, total=300)
    # The checkpoint holds the frame ring (one 36x36 frame per step, `cut` rows written
    # into 250) and, with prioritized replay, the sum tree over its 250 slots.
    assert at_cut["carry/learner/replay/frames"].shape == (1, 250, 1, 36, 36)
    assert int(at_cut["carry/learner/replay/rows"][0]) == min(cut, 250)
    if prioritized:
        leaves = at_cut["carry/learner/priorities/nodes"][0][256:256 + 250]
        assert np.count_nonzero(leaves) > 50


@pytest.mark.e2e
def test_killed_host_gymnasium_run_resumes_bit_identical(tmp_path):
    at_cut, cut = _host_kill_resume(tmp_path, HOST_CARTPOLE_ARGS, total=3000)
    # Whole transitions in a 2000-slot replay, `cut` of them written.
    assert at_cut["carry/learner/replay/data/obs"].shape == (1, 2000, 4)
    assert int(at_cut["carry/learner/replay/size"][0]) == cut


# A grid of two CartPole members on the jitted driver; each checkpoints at 8000 and 16000
# steps and ends at 24000, so a member's checkpoints all stay (3 are kept).
GRID_ARGS = ["--preset", "dqn,double", "--total-steps", "24000", *TINY,
             "--set", "checkpoint_every=8000", "--set", "qtrace_states=0", "--no-artifacts"]


@pytest.mark.e2e
def test_killed_grid_resumes_its_half_trained_member_bit_identical(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_deepq("train", "--out", str(straight), *GRID_ARGS, check=True)

    # Killed while the second member trains, after its first checkpoint.
    kept = kill_after_first_checkpoint(killed, *GRID_ARGS, watch=killed / "double")
    assert kept, "the second member wrote no checkpoint before the kill"
    assert _step(kept[-1]) < 24000, "the member finished before the kill; the test proves nothing"
    assert (killed / "dqn" / "summary.json").exists()  # the first member had finished
    assert not (killed / "double" / "summary.json").exists()
    finished = tree_snapshot(killed / "dqn")
    half = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept}

    run_deepq("train", "--resume", str(killed), "--quiet", "--no-artifacts", check=True)
    # The finished member is not touched: every file keeps its inode, time and bytes.
    assert tree_snapshot(killed / "dqn") == finished
    # The half-trained one resumed from its checkpoints (kept as they were: a fresh start
    # would have deleted them) and ends on the uninterrupted grid's numbers.
    for p in kept:
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == half[p.name]
    for member in ("dqn", "double"):
        a = flat_state(checkpoint.read_raw(checkpoint.latest(straight / member))["state"])
        b = flat_state(checkpoint.read_raw(checkpoint.latest(killed / member))["state"])
        assert _step(checkpoint.latest(killed / member)) == 24000
        assert not _differing(b, a), member
        assert metrics_rows(killed / member) == metrics_rows(straight / member)
    assert (killed / "compare.json").exists()
