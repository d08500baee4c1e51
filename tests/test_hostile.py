"""Hostile input: values at the edges, damaged run files, locks, signals, a full disk.

Each case asserts the exit code, one line on stderr, no traceback, and where nothing should
change, that a hash of the run dir is unchanged. The value and file cases call the command
line in this process (`deepq.cli.main`, whose error handling is the whole difference from a
subprocess); locks, signals and the full disk need real processes.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flax import serialization

from deepq import checkpoint
from deepq.rundir import LOCK_FILE
from tests.helpers import TINY, run_deepq, start_deepq, wait_for

pytestmark = pytest.mark.e2e

# A run that trains for a while (CartPole solved stops a run early: stop_at_return is off)
LONG = [*TINY, "--set", "stop_at_return=inf", "--set", "checkpoint_every=1000"]


def tree_hash(path: Path) -> str:
    """Every file's relative path and bytes (the lock file, which holds the pid of the last
    process that took it, left out)."""
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name != LOCK_FILE:
            digest.update(str(p.relative_to(path)).encode())
            digest.update(p.read_bytes())
    return digest.hexdigest()


def one_line(code: int, stderr: str, rc: int = 2, *needles: str) -> str:
    lines = stderr.strip().splitlines()
    assert code == rc, stderr
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("hostile") / "run"
    run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1000",
              "--set", "checkpoint_every=500", "--no-artifacts", check=True)
    return run


@pytest.fixture
def run(base_run, tmp_path):
    """A copy of the base run to damage."""
    copy = tmp_path / "run"
    shutil.copytree(base_run, copy)
    return copy




# -- values: refused before anything on disk changes ---------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--set", "total_steps=1e30"], "more than the compiled loops can count"),
    (["--total-steps", "10000000000"], "more than the compiled loops can count"),
    (["--set", "total_steps=inf"], "expected an int"),
    (["--set", "total_steps=nan"], "expected an int"),
    (["--set", "learning_rate=nan"], "learning_rate must be a finite number"),
    (["--set", "learning_rate=inf"], "learning_rate must be a finite number"),
    (["--set", "epsilon_schedule=exponential", "--set", "epsilon_decay=nan"],
     "epsilon_decay must be a finite number"),
    (["--set", "gamma=-inf"], "gamma must be a finite number"),
    (["--set", "tau=nan"], "tau must be a finite number"),
    (["--set", "stop_at_return=-inf"], "stop_at_return must be a finite number"),
    (["--set", "num_envs=3000000000"], "num_envs=3000000000 is more than"),
    (["--seeds", "2147483648"], "num_seeds=2147483648 is more than"),
    (["--total-steps", "2147483647", "--set", "num_envs=2"], "lower total_steps"),
    (["--seed", "-1"], "seed"),
    (["--set", "learning_starts=-5"], "learning_starts"),
    (["--set", "batch_size=2.5"], "batch_size=2.5"),
    (["--set", "hidden_sizes=64,1e99"], "hidden_sizes"),
    (["--set", "epsilon_start=2"], "epsilon_start"),
    (["--set", "chunk_steps=0"], "chunk_steps"),
    (["--preset", ""], "--preset is empty"),
    (["--preset", ",,"], "--preset is empty"),
    (["--algo", "dqn,nope"], "unknown algo 'nope'"),
    (["--env", ""], "env"),
])
def test_bad_values_leave_an_existing_run_alone(run, cli, args, needle):
    before = tree_hash(run)
    code, _, err = cli("train", "--out", run, "--force", *args, "--quiet")
    one_line(code, err, 2, needle)
    assert tree_hash(run) == before


@pytest.mark.parametrize("args", [["train", "--out", ""], ["train", "--resume", ""],
                                  ["record", "{run}", "--out", ""]])
def test_an_empty_path_is_refused(run, cli, tmp_path, monkeypatch, args):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(*[a.format(run=run) for a in args])
    one_line(code, err, 2, "an empty path was given")
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "run"]


# -- resume: a transaction -------------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--total-steps", "500"], "give at least 1,000"),
    (["--total-steps", "10000000000"], "more than the compiled loops can count"),
    (["--force"], "drop one of them"),
    (["--set", "learning_rate=1"], "cannot change learning_rate"),
    (["--seeds", "2"], "cannot change seeds"),
    (["--out", "elsewhere"], "drop --out"),
])
def test_resume_refusals_change_nothing(run, cli, args, needle):
    before = tree_hash(run)
    code, _, err = cli("train", "--resume", run, *args, "--quiet")
    one_line(code, err, 2, needle)
    assert tree_hash(run) == before


def _damage(run: Path, name: str, data: bytes) -> None:
    (run / name).write_bytes(data)


RUN_FILES = [
    ("metrics.csv", b"seed,env_step\nx,y\n", "metrics.csv is damaged (no episode column)"),
    ("metrics.csv", None, "metrics.csv is damaged (a row that is not numbers)"),
    ("metrics.csv", b"\xff\xfe\x00garbage", "metrics.csv is damaged (not CSV text)"),
    ("metrics.csv", b"", "metrics.csv is damaged (no seed column)"),
    ("qtrace.csv", b"seed,env_step,avg_max_q\n0,500,abc\n", "qtrace.csv is damaged"),
    ("heldout_states.npy", b"\x93NUMPY garbage", "heldout_states.npy is damaged"),
    ("config.json", b'{"config": {"env_id": "CartPole-v1\xff"}}', "config.json is corrupt"),
    ("config.json", b"[]", "config.json is corrupt"),
    ("config.json", b"", "config.json is corrupt"),
]


@pytest.mark.parametrize("name,data,needle", RUN_FILES)
def test_resume_reads_every_file_first(run, cli, name, data, needle):
    if data is None:  # a row cut in half by hand
        data = (run / name).read_bytes() + b"0,12\n"
    _damage(run, name, data)
    before = tree_hash(run)
    code, _, err = cli("train", "--resume", run, "--total-steps", "2000", "--quiet")
    one_line(code, err, 2, needle)
    assert tree_hash(run) == before


def _edit_config(run: Path, **changes) -> None:
    doc = json.loads((run / "config.json").read_text())
    doc["config"].update(changes)
    (run / "config.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("changes,needle", [
    ({"num_seeds": 1.0}, "num_seeds must be an integer, got 1.0"),
    ({"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
    ({"hidden_sizes": 64}, "config.json is corrupt"),
    ({"no_such_key": 1}, "unknown config key(s) no_such_key"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number"),
    ({"total_steps": 1e400}, "total_steps must be an integer"),
    ({"double_dqn": "yes"}, "double_dqn must be true or false"),
])
@pytest.mark.parametrize("command", ["resume", "eval"])
def test_a_wrong_config_json_is_named(run, cli, changes, needle, command):
    _edit_config(run, **changes)
    before = tree_hash(run)
    args = ["train", "--resume", run, "--quiet"] if command == "resume" else ["eval", run]
    code, _, err = cli(*args)
    line = one_line(code, err, 2, needle)
    assert str(run / "config.json") in line
    assert tree_hash(run) == before


def _rewrite_checkpoint(path: Path, edit) -> None:
    raw = serialization.msgpack_restore(path.read_bytes())
    edit(raw)
    path.write_bytes(serialization.msgpack_serialize(raw))


@pytest.mark.parametrize("damage,needle", [
    ("truncate", "is corrupt (unreadable msgpack)"),
    ("random", "is corrupt (unreadable msgpack)"),
    ("no_episodes", "no readable progress in its metadata"),
    ("meta_not_dict", "no readable progress in its metadata"),
    ("not_deepq", "is not a deepq checkpoint"),
    ("directory", "is corrupt"),
    ("wrong_name", "no checkpoint in"),
])
def test_damaged_checkpoints(run, cli, damage, needle):
    newest = checkpoint.list_checkpoints(run)[-1]
    if damage == "truncate":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    elif damage == "random":
        newest.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "no_episodes":
        _rewrite_checkpoint(newest, lambda raw: raw["meta"].pop("episodes"))
    elif damage == "meta_not_dict":
        _rewrite_checkpoint(newest, lambda raw: raw.update(meta=[1, 2]))
    elif damage == "not_deepq":
        newest.write_bytes(serialization.msgpack_serialize({"weights": np.zeros(3)}))
    elif damage == "directory":
        newest.unlink()
        newest.mkdir()
    elif damage == "wrong_name":
        for p in checkpoint.list_checkpoints(run):
            p.rename(p.with_name(p.name + ".bak"))
    before = tree_hash(run)
    code, _, err = cli("train", "--resume", run, "--total-steps", "2000", "--quiet")
    one_line(code, err, 2, needle)
    assert tree_hash(run) == before
    if damage not in ("no_episodes", "meta_not_dict"):  # eval reads only the parameters
        code, _, err = cli("eval", run, "--episodes", "1")
        one_line(code, err, 2, needle)


# -- readers and writers of artifacts --------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["record", "{run}", "--out", "{run}/config.json/x.gif"], "pick another --out"),
    (["record", "{run}", "--out", "{run}/checkpoints.gif"], None),
    (["record", "{run}", "--out", "{tmp}/x.gif", "--seed-index", "5"], "out of range"),
    (["record", "{run}", "--out", "{tmp}/x.gif", "--seed-index", "-1"], "out of range"),
    (["record", "{run}", "--out", "{tmp}/x.gif", "--fps", "0"], "must be positive"),
    (["plot", "{run}", "--out", "{run}/config.json/x.png"], "pick another --out"),
    (["plot", "{run}", "--out", "{tmp}/x.jpg"], ".png, .pdf or .svg"),
    (["compare", "{run}", "--out", "{run}/config.json/c"], "pick another --out"),
    (["eval", "{run}", "--episodes", "0"], "--episodes must be positive"),
    (["eval", "{run}", "--epsilon", "nan"], "--epsilon must be in [0, 1]"),
    (["eval", "{run}", "--env", "Acrobot-v1"], "does not fit this run's agent"),
])
def test_artifact_commands(run, cli, tmp_path, args, needle):
    if needle is None:  # a directory where the video would go
        (run / "checkpoints.gif").mkdir()
        needle = "is a directory"
    before = tree_hash(run)
    code, _, err = cli(*[a.format(run=run, tmp=tmp_path) for a in args])
    one_line(code, err, 2, needle)
    assert tree_hash(run) == before
    assert not (tmp_path / "x.gif").exists()


def test_plot_and_compare_name_a_damaged_metrics_file(run, cli, tmp_path):
    (run / "metrics.csv").write_bytes(b"seed,env_step,episode,return\n0,1,1,lots\n")
    code, _, err = cli("plot", run, "--out", tmp_path / "c.png")
    one_line(code, err, 2, "metrics.csv is damaged")
    code, _, err = cli("compare", run, "--out", tmp_path / "cmp")
    one_line(code, err, 2, "metrics.csv is damaged")


def test_readers_skip_a_row_being_written(run, cli, tmp_path):
    """A reader beside a training run can meet its last row half written."""
    with open(run / "metrics.csv", "ab") as f:
        f.write(b"0,1500,3")
    code, _, err = cli("plot", run, "--out", tmp_path / "c.png")
    assert code == 0 and err == "", err
    assert (tmp_path / "c.png").stat().st_size > 0


@pytest.mark.parametrize("doc,needle", [
    ("not json", "grid.json is missing or corrupt"),
    ('{"members": []}', "grid.json is missing or corrupt"),
    ('{"members": [{"name": "../escape", "preset": null, "config": {}}]}',
     "grid.json is missing or corrupt"),
    ('{"members": [{"name": "a", "preset": null, "config": {"batch_size": "big"}}]}',
     "batch_size must be an integer"),
])
def test_a_damaged_grid_file(tmp_path, cli, doc, needle):
    grid = tmp_path / "grid"
    grid.mkdir()
    (grid / "grid.json").write_text(doc)
    before = tree_hash(grid)
    code, _, err = cli("train", "--resume", grid, "--quiet")
    one_line(code, err, 2, needle)
    assert tree_hash(grid) == before and not (grid / LOCK_FILE).exists()


# -- the Python API --------------------------------------------------------------------------
def test_the_api_names_what_is_wrong(run):
    import deepq
    from deepq.config import Config
    from deepq.errors import UserError

    loaded = deepq.load(run)
    cases = [
        (lambda: loaded.predict(np.zeros(4), seed_index=5), "seed index 5 out of range"),
        (lambda: loaded.predict(np.zeros(4), seed_index=1.0), "seed index 1.0 out of range"),
        (lambda: loaded.predict(np.zeros((2, 3))), "obs has shape (2, 3)"),
        (lambda: loaded.predict("left"), "obs must be numbers"),
        (lambda: loaded.predict(np.zeros(4), epsilon=1.5), "epsilon must be in [0, 1]"),
        (lambda: deepq.train(Config(learning_rate="fast"), run.parent / "x"),
         "learning_rate must be a number"),
        (lambda: deepq.train(out=run, resume=True, force=True), "drop one of them"),
    ]
    for call, needle in cases:
        with pytest.raises(UserError) as info:
            call()
        assert needle in str(info.value)
    assert loaded.predict(np.zeros((3, 4))).shape == (3,)
    assert not (run.parent / "x").exists()


# -- one trainer per run dir -----------------------------------------------------------------
def _first_checkpoint(out: Path, proc: subprocess.Popen) -> None:
    assert wait_for(lambda: checkpoint.list_checkpoints(out), proc), "no checkpoint"


def test_a_second_trainer_meets_the_lock(tmp_path):
    out = tmp_path / "run"
    # a budget it cannot reach while the test runs (CartPole trains ~50k steps/s here)
    first = start_deepq("train", "--out", str(out), *TINY, "--set", "stop_at_return=inf",
                        "--set", "checkpoint_every=50000", "--total-steps", "2000000000",
                        "--no-artifacts")
    try:
        _first_checkpoint(out, first)
        resume = run_deepq("train", "--resume", str(out), "--quiet")
        one_line(resume.returncode, resume.stderr, 2, "in use by another deepq train",
                 f"pid {first.pid}")
        force = run_deepq("train", "--out", str(out), *TINY, "--force")
        one_line(force.returncode, force.stderr, 2, "in use by another deepq train")
        assert checkpoint.list_checkpoints(out) and (out / "config.json").exists()
        # readers are not locked out
        assert run_deepq("eval", str(out), "--episodes", "1").returncode == 0
    finally:
        first.kill()
        first.wait()
    # SIGKILL left no stale lock: the run resumes
    done = int(checkpoint.list_checkpoints(out)[-1].stem.removeprefix("step_"))
    proc = run_deepq("train", "--resume", str(out), "--total-steps", str(done + 1000),
                     "--quiet", "--no-artifacts")
    assert proc.returncode == 0, proc.stderr


# -- signals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_before_the_first_checkpoint_says_so(tmp_path, sig):
    out = tmp_path / "run"
    proc = start_deepq("train", "--out", str(out), *LONG, "--total-steps", "400000",
                       "--set", "checkpoint_every=0", stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: (out / "config.json").exists(), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    line = one_line(proc.returncode, err, 128 + sig, f"stopped by {signal.Signals(sig).name}")
    if checkpoint.list_checkpoints(out):  # it reached the chunk's end: saved, resumable
        assert f"continue with deepq train --resume {out}" in line
    else:
        assert "nothing to resume" in line


def test_sigterm_outside_training_stops_with_a_line(run):
    proc = start_deepq("eval", str(run), "--episodes", "100000", stderr=subprocess.PIPE,
                       text=True)
    assert wait_for(lambda: _catches(proc.pid, signal.SIGTERM), proc, timeout=120)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    one_line(proc.returncode, err, 143, "stopped by SIGTERM")


def _catches(pid: int, sig: int) -> bool:
    """Has process `pid` installed a handler for `sig` (its SigCgt mask in /proc)?"""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (sig - 1) & 1)


def test_the_plotter_ends_with_its_parent(run, tmp_path):
    """A SIGKILLed trainer leaves no child drawing into its run dir."""
    script = ("import sys, time; from pathlib import Path; from deepq.report import "
              "start_plot_process; p = start_plot_process(Path(sys.argv[1]), "
              "Path(sys.argv[2])); print(p.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(run), str(tmp_path / "c.png")],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)
    time.sleep(1)
    assert not (tmp_path / "c.png").exists()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


# -- a full disk -----------------------------------------------------------------------------
def _with_limit(kib: int, *args: str) -> subprocess.CompletedProcess:
    """`deepq ARGS` whose files may not grow past `kib` KiB (`ulimit -f`, RLIMIT_FSIZE): a
    write past it fails with EFBIG as one on a full disk fails with ENOSPC. JAX's
    compilation cache is off: its files are not the run's."""
    env = dict(os.environ, DEEPQ_JAX_CACHE="off")
    return subprocess.run(["sh", "-c", f'ulimit -f {kib} && exec "$@"', "sh", sys.executable,
                           "-m", "deepq", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_a_full_disk_during_a_checkpoint_keeps_the_old_one(run):
    kept = {p.name: p.read_bytes() for p in checkpoint.list_checkpoints(run)}
    size = max(len(b) for b in kept.values())
    proc = _with_limit(size // 2048, "train", "--resume", str(run), "--total-steps", "3000",
                       "--quiet", "--no-artifacts")
    line = one_line(proc.returncode, proc.stderr, 74, "cannot write", "File too large")
    assert f"is intact: free space, then deepq train --resume {run}" in line
    assert {p.name: p.read_bytes() for p in checkpoint.list_checkpoints(run)} == kept
    assert not list((run / "checkpoints").glob(".*tmp"))  # no temp file left behind
    proc = run_deepq("train", "--resume", str(run), "--total-steps", "3000", "--quiet",
                     "--no-artifacts")
    assert proc.returncode == 0, proc.stderr
    assert checkpoint.list_checkpoints(run)[-1].name == "step_000000003000.msgpack"


def test_a_full_disk_before_the_first_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = _with_limit(1, "train", "--out", str(out), *TINY)  # config.json is ~3 KB
    one_line(proc.returncode, proc.stderr, 74, "cannot write", "no checkpoint was written yet")


def test_resumed_logs_keep_one_line_ending(run):
    for name in ("metrics.csv", "qtrace.csv"):  # as older runs wrote them
        (run / name).write_bytes((run / name).read_bytes().replace(b"\n", b"\r\n"))
    proc = run_deepq("train", "--resume", str(run), "--total-steps", "2000", "--quiet",
                     "--no-artifacts")
    assert proc.returncode == 0, proc.stderr
    for name in ("metrics.csv", "qtrace.csv"):
        assert b"\r" not in (run / name).read_bytes()


def test_a_run_whose_last_rollout_passed_its_budget_resumes(tmp_path, cli):
    """PQN trains in whole rollouts: 1,000 steps of 8 envs x 16 end at 1,024. A plain
    --resume (no new budget) of the finished run writes its artifacts again; only a budget
    given below the clock is refused."""
    out = tmp_path / "run"
    args = ["--algo", "pqn", "--set", "num_envs=8", "--set", "rollout_steps=16",
            "--set", "num_minibatches=2", "--set", "eval_episodes=2", "--set", "gif=false"]
    run_deepq("train", "--out", str(out), *args, "--total-steps", "1000", "--quiet",
              "--no-artifacts", check=True)
    assert checkpoint.list_checkpoints(out)[-1].name == "step_000000001024.msgpack"
    code, _, err = cli("train", "--resume", out, "--quiet")
    assert code == 0, err
    assert (out / "eval.json").exists()
    code, _, err = cli("train", "--resume", out, "--total-steps", "1000", "--quiet")
    one_line(code, err, 2, "give at least 1,024")
