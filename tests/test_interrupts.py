"""Stop signals during training: SIGINT (Ctrl-C) and SIGTERM save a checkpoint at the next
chunk boundary and exit 130 / 143 with one line; `--resume` then ends bit-identical to a run
never stopped. A time cadence (`checkpoint_minutes`) bounds what a SIGKILL can lose."""

import gc
import os
import signal
import subprocess
import sys
import time
import weakref

import numpy as np
import pytest

import deepq
from deepq import checkpoint
from deepq.errors import Interrupted, raise_from_handler
from tests.helpers import TINY, flat_state, metrics_rows, run_deepq, start_deepq, wait_for

# Each test runs deepq in a subprocess (or trains a whole run): see the README's markers.
pytestmark = pytest.mark.e2e

# CartPole on the jitted driver, one seed: 40000 steps in 500-step chunks, the default
# checkpoint cadence (none by steps, one every 10 minutes: none in a run this short).
RUN_ARGS = [*TINY, "--total-steps", "40000", "--no-artifacts"]


def _metrics_lines(run) -> int:
    try:
        return (run / "metrics.csv").read_text().count("\n")
    except OSError:
        return 0


def _stop(run, signals, when, args=RUN_ARGS, gap=0.05) -> tuple[subprocess.CompletedProcess,
                                                                 float]:
    """Start `deepq train --out RUN`, send `signals` (`gap` seconds apart) once `when()`
    holds; returns the finished process (stderr captured) and the seconds from the last
    signal to its exit."""
    proc = start_deepq("train", "--out", str(run), *args, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(when, proc), "the run ended before the moment to stop it"
        for i, signum in enumerate(signals):
            if i:
                time.sleep(gap)
            os.kill(proc.pid, signum)
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


def test_ctrl_c_saves_a_checkpoint_at_the_chunk_boundary_and_resumes_bit_identical(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run_deepq("train", "--out", str(straight), *RUN_ARGS, check=True)

    # Once the first chunk's episodes are logged: training is under way, nothing saved yet.
    proc, took = _stop(stopped, [signal.SIGINT], lambda: _metrics_lines(stopped) > 1)
    assert proc.returncode == 130, proc.stderr  # 128 + SIGINT, the shell's code for Ctrl-C
    assert took < 15, f"{took:.1f} s from Ctrl-C to exit"
    kept = checkpoint.list_checkpoints(stopped)
    assert len(kept) == 1, kept  # the one the signal asked for
    step = checkpoint.read_raw(kept[0])["meta"]["clock"]
    assert 0 < step < 40000 and step % 500 == 0  # a chunk boundary
    # One line, naming the signal, the step, the checkpoint and the resume command.
    assert proc.stderr == (f"deepq: stopped by SIGINT at steps {step:,} of 40,000; checkpoint "
                           f"{kept[0]} saved: continue with deepq train --resume {stopped}\n")
    assert sorted(p.name for p in (stopped / "checkpoints").iterdir()) == [kept[0].name]

    run_deepq("train", "--resume", str(stopped), "--quiet", "--no-artifacts", check=True)
    assert checkpoint.latest(stopped).name == "step_000000040000.msgpack"
    a, b = _state(checkpoint.latest(straight)), _state(checkpoint.latest(stopped))
    assert sorted(a) == sorted(b)
    assert [k for k in a if not np.array_equal(a[k], b[k])] == []
    assert metrics_rows(stopped) == metrics_rows(straight)  # each episode logged once


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    run = tmp_path / "run"
    proc, _ = _stop(run, [signal.SIGTERM], lambda: _metrics_lines(run) > 1)
    assert proc.returncode == 143, proc.stderr  # 128 + SIGTERM
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("deepq: stopped by SIGTERM")
    assert len(checkpoint.list_checkpoints(run)) == 1
    run_deepq("train", "--resume", str(run), "--quiet", "--no-artifacts", check=True)
    assert checkpoint.latest(run).name == "step_000000040000.msgpack"


def test_a_second_ctrl_c_before_the_first_chunk_stops_at_once_without_a_resume_hint(tmp_path):
    run = tmp_path / "run"
    # The run dir is set up and the first chunk is compiling: two Ctrl-C 50 ms apart.
    proc, _ = _stop(run, [signal.SIGINT, signal.SIGINT],
                    lambda: (run / "config.json").exists())
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert not checkpoint.list_checkpoints(run)
    assert proc.stderr == (f"deepq: stopped by SIGINT before the first checkpoint of {run}: "
                           "nothing to resume; start the run again\n")


def test_a_second_ctrl_c_while_a_long_chunk_runs_stops_within_seconds(tmp_path):
    run = tmp_path / "run"
    # One chunk of 4M CartPole steps: about 50 s on a 2-core CPU. The first Ctrl-C comes as
    # the chunk starts (qtrace.csv's first row is written just before it), asking for a
    # checkpoint at its end; the second, 2 s later, while it compiles or runs, must not wait
    # for it: neither in numpy's pull of its logs nor in XLA's teardown at exit.
    args = [*TINY, "--total-steps", "4000000", "--set", "chunk_steps=4000000",
            "--no-artifacts"]
    proc, took = _stop(run, [signal.SIGINT, signal.SIGINT],
                       lambda: (run / "qtrace.csv").exists(), args=args, gap=2.0)
    assert proc.returncode == 130, proc.stderr
    assert took < 15, f"{took:.1f} s from the second Ctrl-C to exit"
    assert not checkpoint.list_checkpoints(run)
    assert proc.stderr == (f"deepq: stopped by SIGINT before the first checkpoint of {run}: "
                           "nothing to resume; start the run again\n")


@pytest.mark.parametrize("minutes,kept", [(1e-9, [1000, 1500, 2000]), (0.0, [2000])])
def test_checkpoint_minutes_saves_at_chunk_boundaries_once_that_much_time_has_passed(
        tmp_path, minutes, kept):
    """With the cadence below a chunk's duration every chunk boundary saves (the newest
    three kept); with 0 only the final checkpoint is written."""
    cfg = deepq.config_for("CartPole-v1", hidden_sizes=(32,), buffer_size=2000,
                           batch_size=32, learning_starts=200, chunk_steps=500,
                           total_steps=2000, select_every=0, qtrace_states=0,
                           checkpoint_minutes=minutes)
    deepq.train(cfg, tmp_path / "run", progress=False, artifacts=False)
    steps = [checkpoint.read_raw(p)["meta"]["clock"]
             for p in checkpoint.list_checkpoints(tmp_path / "run")]
    assert steps == kept


class _Referent:
    pass


def _signal_self_and_spin(*_):
    os.kill(os.getpid(), signal.SIGUSR1)
    for _ in range(10_000):  # the handler runs on one of these steps, in here
        pass


def _in_a_gc_callback():
    def callback(phase, info):
        if phase == "start":
            gc.callbacks.remove(callback)
            _signal_self_and_spin()

    gc.callbacks.append(callback)
    gc.collect()


def _in_a_weakref_callback():
    referent = _Referent()
    ref = weakref.ref(referent, _signal_self_and_spin)
    del referent  # the callback runs here
    assert ref() is None


@pytest.mark.parametrize("trigger", [_in_a_gc_callback, _in_a_weakref_callback])
def test_a_stop_signal_inside_a_callback_still_stops(trigger):
    """Python runs a signal handler between any two bytecodes, also inside a gc callback
    (JAX registers one) or a weakref callback, where CPython prints a raised exception as
    "Exception ignored" and goes on: the run would not stop. The Interrupted comes back 50 ms
    later instead, from ordinary code."""
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: raise_from_handler(
        Interrupted("stopped", signum)))
    hook = sys.unraisablehook
    try:
        with pytest.raises(Interrupted, match="stopped"):
            trigger()
            time.sleep(5)  # the signal comes again and raises here
    finally:
        signal.signal(signal.SIGUSR1, previous)
        sys.unraisablehook = hook
