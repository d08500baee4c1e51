"""Ctrl-C (SIGINT) during training: a prompt exit with the resume hint, the checkpoints on
disk intact, and `--resume` ending bit-identical to a run never interrupted."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest

from deepq import checkpoint
from tests.helpers import TINY, flat_state, metrics_rows, run_deepq, start_deepq, wait_for

# Each test runs deepq in a subprocess (or trains a whole run): see the README's markers.
pytestmark = pytest.mark.e2e

# CartPole on the jitted driver, one seed: 40000 steps in 500-step chunks, a checkpoint
# every 2000, so training goes on for a while after the first checkpoint.
RUN_ARGS = [*TINY, "--total-steps", "40000", "--set", "checkpoint_every=2000",
            "--no-artifacts"]
HINT = "deepq: interrupted; resume with deepq train --resume RUN\n"  # cli.main's line
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's code for a Ctrl-C


def _interrupt(run, when) -> tuple[subprocess.CompletedProcess, float]:
    """Start `deepq train --out RUN`, send SIGINT once `when()` holds; returns the finished
    process (stderr captured) and the seconds it took to exit after the signal."""
    proc = start_deepq("train", "--out", str(run), *RUN_ARGS, stderr=subprocess.PIPE,
                       text=True)
    try:
        assert wait_for(when, proc), "the run ended before the moment to interrupt it"
        os.kill(proc.pid, signal.SIGINT)
        sent = time.time()
        _, stderr = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr), \
            time.time() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _state(ckpt) -> dict:
    return flat_state(checkpoint.read_raw(ckpt)["state"])


def test_ctrl_c_exits_with_the_hint_and_resumes_bit_identical(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run_deepq("train", "--out", str(straight), *RUN_ARGS, check=True)

    proc, took = _interrupt(stopped, lambda: checkpoint.list_checkpoints(stopped))
    assert proc.returncode == EXIT_INTERRUPTED
    assert proc.stderr == HINT  # one line: no traceback
    assert took < 15, f"{took:.1f} s from Ctrl-C to exit"

    # Every checkpoint left is whole (the atomic write leaves no temp file) and readable,
    # and the run had not finished: the resume has work to do.
    kept = checkpoint.list_checkpoints(stopped)
    assert kept and sorted(p.name for p in (stopped / "checkpoints").iterdir()) == \
        [p.name for p in kept]
    for ckpt in kept:
        meta = checkpoint.read_raw(ckpt)["meta"]
        assert meta["clock"] == int(ckpt.stem.split("_")[1]) < 40000

    run_deepq("train", "--resume", str(stopped), "--quiet", "--no-artifacts", check=True)
    assert checkpoint.latest(stopped).name == "step_000000040000.msgpack"
    a, b = _state(checkpoint.latest(straight)), _state(checkpoint.latest(stopped))
    assert sorted(a) == sorted(b)
    assert [k for k in a if not np.array_equal(a[k], b[k])] == []
    assert metrics_rows(stopped) == metrics_rows(straight)  # each episode logged once


@pytest.mark.xfail(strict=True, reason="issue 23: Ctrl-C before the first checkpoint still "
                                        "says to resume (literally RUN)")
def test_ctrl_c_before_any_checkpoint_does_not_offer_a_resume(tmp_path):
    run = tmp_path / "run"
    # The run dir is set up, the first chunk not yet compiled (the first checkpoint is
    # 2000 steps away).
    proc, _ = _interrupt(run, lambda: (run / "config.json").exists())
    assert not checkpoint.list_checkpoints(run)
    assert proc.returncode == EXIT_INTERRUPTED and "Traceback" not in proc.stderr
    assert "--resume" not in proc.stderr
