"""Bad input: one line on stderr naming the problem, exit 2, no traceback, nothing damaged."""

import os
from pathlib import Path

import pytest

from tests.helpers import TINY, run_deepq

# Each test runs deepq in a subprocess (or trains a whole run): see the README's markers.
pytestmark = pytest.mark.e2e


def assert_clean_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("deepq: error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("args,needles", [
    (["--env", "CartPol-v1"], ["unknown env id", "CartPole-v1"]),
    (["--set", "preset=rainbow"], ["preset is not a hyperparameter", "--preset"]),
    (["--env", "Pendulum-v1"], ["Box action space", "Discrete"]),
    (["--set", "batch_size=0"], ["batch_size must be a positive"]),
    (["--hidden-sizes", "64,-1"], ["hidden_sizes"]),
    (["--set", "batch_size=512", "--set", "buffer_size=100"], ["larger than buffer_size"]),
    (["--total-steps", "500", "--set", "learning_starts=1000"], ["never learn"]),
    (["--set", "gamma"], ["malformed override", "key=value"]),
    (["--set", "learning_rate=fast"], ["expected a float"]),
    (["--set", "double_dqn=maybe"], ["double_dqn=maybe", "expected a bool (true or false)"]),
    (["--set", "no_such_knob=1"], ["unknown hyperparameter"]),
    (["--seeds", "0"], ["num_seeds must be a positive"]),
    (["--backend", "gymnax", "--env", "LunarLander-v3"], ["LunarLander-v3"]),
    (["--backend", "gymnasium", "--env", "Breakout-MinAtar"], ["only as a gymnax env"]),
    (["--set", "network=resnet"], ["network='resnet'", "minatar_cnn"]),
    (["--set", "sticky_actions=1"], ["sticky_actions must be in [0, 1)"]),
    (["--set", "tau=0"], ["tau must be in (0, 1], got 0.0"]),
    (["--bogus-flag"], ["unrecognized arguments"]),
    (["--env", "ALE/Pongg-v5"], ["unknown env id", "ALE/Pong-v5"]),
    (["--env", "ALE/Pong-v5", "--preset", "dqn2013", "--set", "frame_crop_top=40"],
     ["frame_crop_top=40", "at most 26"]),
    (["--env", "ALE/Pong-v5", "--set", "frame_resize=84"], ["frame_resize=84", "height x"]),
    (["--set", "n_step=0"], ["n_step must be a positive"]),
    (["--set", "network=per_action", "--set", "dueling=true"], ["network=per_action"]),
    (["--set", "distributional=true", "--set", "v_min=5", "--set", "v_max=5"],
     ["v_min=5.0 must be below v_max=5.0"]),
    (["--algo", "reinforce", "--env", "Acrobot-v1", "--set", "policy=bernoulli"],
     ["policy=bernoulli", "3", "policy=softmax"]),
    (["--algo", "reinforce", "--set", "dueling=true"], ["DQN parts", "algo=reinforce"]),
    (["--algo", "reinforce", "--set", "batch_episodes=0"], ["batch_episodes must be a positive"]),
    (["--algo", "reinforce", "--env", "ALE/Pong-v5"], ["KarpathyPong-v0"]),
    (["--algo", "reinforce", "--set", "standardize_returns=always"],
     ["standardize_returns='always'", "episode"]),
])
def test_bad_train_input(tmp_path, args, needles):
    proc = run_deepq("train", "--out", str(tmp_path / "run"), *args, "--quiet")
    assert_clean_error(proc, *needles)
    assert not (tmp_path / "run").exists()


def test_existing_run_dir_is_not_touched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{precious}")
    (run / "notes.txt").write_text("mine")
    proc = run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1000")
    assert_clean_error(proc, "already exists", "--resume", "--force")
    assert (run / "config.json").read_text() == "{precious}"
    assert (run / "notes.txt").read_text() == "mine"


def test_force_refuses_a_dir_that_is_not_a_run(tmp_path):
    (tmp_path / "data.csv").write_text("keep me")
    proc = run_deepq("train", "--out", str(tmp_path), *TINY, "--force")
    assert_clean_error(proc, "not a deepq run dir")
    assert (tmp_path / "data.csv").read_text() == "keep me"


def test_unwritable_output_dir(tmp_path):
    """A dir the OS refuses to create, even to root: sysfs takes no new entries; for other
    users a parent without write permission does the same."""
    if os.geteuid() == 0:
        parent = Path("/sys")
    else:
        parent = tmp_path / "locked"
        parent.mkdir(mode=0o500)
    out = parent / f"deepq-test-{os.getpid()}" / "run"
    proc = run_deepq("train", "--out", str(out), *TINY)
    assert_clean_error(proc, "cannot write to output dir", str(out))
    assert any(why in proc.stderr for why in ("Permission denied", "Operation not permitted",
                                              "Read-only file system"))
    assert not out.parent.exists()


def test_output_dir_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = run_deepq("train", "--out", str(tmp_path / "afile" / "run"), *TINY)
    assert_clean_error(proc, "cannot write", "Not a directory")
    assert (tmp_path / "afile").read_text() == "x"
    assert os.listdir(tmp_path) == ["afile"]


def test_output_dir_name_too_long(tmp_path):
    out = tmp_path / ("d" * 300) / "run"  # over the 255-byte limit of a file name
    proc = run_deepq("train", "--out", str(out), *TINY)
    assert_clean_error(proc, "cannot write", "File name too long")
    assert os.listdir(tmp_path) == []


def test_missing_run_and_checkpoint(tmp_path):
    assert_clean_error(run_deepq("eval", str(tmp_path / "nope")), "does not exist")
    assert_clean_error(run_deepq("train", "--resume", str(tmp_path / "nope")), "does not exist")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"config": {"env_id": "CartPole-v1"}}')
    assert_clean_error(run_deepq("eval", str(run)), "no checkpoint")


def test_record_needs_a_video_suffix(trained, tmp_path):
    before = sorted(p.relative_to(trained) for p in trained.rglob("*"))
    proc = run_deepq("record", str(trained), "--out", str(tmp_path / "x.avi"))
    assert_clean_error(proc, "x.avi", "the video must end in .gif or .mp4")
    assert os.listdir(tmp_path) == []
    assert sorted(p.relative_to(trained) for p in trained.rglob("*")) == before


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run"
    run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1000", "--no-artifacts",
              check=True)
    return run


def test_corrupt_checkpoint(trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    ckpt.write_bytes(b"\x00garbage")
    assert_clean_error(run_deepq("eval", str(run)), "corrupt")
    assert_clean_error(run_deepq("train", "--resume", str(run), "--quiet"), "corrupt")
    assert ckpt.read_bytes() == b"\x00garbage"  # left for the user to inspect


def test_mismatched_checkpoint(trained, tmp_path):
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    doc = json.loads((run / "config.json").read_text())
    doc["config"]["hidden_sizes"] = [16, 16]
    (run / "config.json").write_text(json.dumps(doc))
    assert_clean_error(run_deepq("eval", str(run)), "does not match")
    assert_clean_error(run_deepq("train", "--resume", str(run), "--quiet"), "does not match")


def test_resume_refuses_new_hyperparameters(trained):
    proc = run_deepq("train", "--resume", str(trained), "--set", "gamma=0.5", "--quiet")
    assert_clean_error(proc, "cannot change gamma")


def test_eval_bad_episodes(trained):
    assert_clean_error(run_deepq("eval", str(trained), "--episodes", "0"), "--episodes")
    assert_clean_error(run_deepq("eval", str(trained), "--epsilon", "2"), "--epsilon")


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = run_deepq("train", "--out", str(run), *TINY, "--total-steps", "3000",
                     "--set", "learning_rate=1e30", "--set", "max_grad_norm=0",
                     "--set", "optimizer=sgd", "--set", "checkpoint_every=500",
                     "--set", "learning_starts=500")
    assert proc.returncode == 3, proc.stderr
    assert "diverged" in proc.stderr and "Traceback" not in proc.stderr
    ckpts = sorted(Path(run, "checkpoints").iterdir())
    assert ckpts, "the pre-divergence checkpoint must be kept"
    # The kept checkpoint is finite and loads.
    ok = run_deepq("eval", str(run), "--episodes", "2", "--json")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("other,needles", [
    ("Acrobot-v1", ["--env Acrobot-v1 does not fit", "[6]", "3 actions", "CartPole-v1", "[4]"]),
    ("MountainCar-v0", ["--env MountainCar-v0 does not fit", "[2]", "3 actions"]),
    ("Breakout-MinAtar", ["Breakout-MinAtar has no Gymnasium env"]),
])
def test_eval_on_an_env_the_agent_cannot_play(trained, other, needles):
    """A CartPole agent (4 observations, 2 actions) evaluated on an env with other spaces:
    one line naming both envs' spaces, exit 2, the run untouched."""
    before = {p: p.stat().st_mtime_ns for p in trained.rglob("*")}
    assert_clean_error(run_deepq("eval", str(trained), "--env", other), *needles)
    assert {p: p.stat().st_mtime_ns for p in trained.rglob("*")} == before
