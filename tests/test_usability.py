"""Everyday habits: help that shows the run's values, --dry-run, config files, presets NAME,
progress lines without a terminal and a bar on one, TensorBoard's extra scalars, compare's
warnings."""

import dataclasses
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from tensorboardX.proto import event_pb2

from deepq.config import CHOICES, Config
from deepq.presets import PRESETS, config_for
from deepq.report import COLUMNS, METRICS_FILE, start_plot_process
from tests.helpers import DEEPQ, ROOT, TINY, run_deepq

pytestmark = pytest.mark.e2e




def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("args,env,preset,algo", [
    (["--env", "CartPole-v1"], "CartPole-v1", None, None),
    (["--env", "Acrobot-v1"], "Acrobot-v1", None, None),
    (["--env", "CartPole-v1", "--preset", "rainbow,dqn"], "CartPole-v1", "rainbow", None),
    (["--algo", "pqn"], None, None, "pqn"),
])
def test_help_shows_the_values_the_run_will_use(cli, args, env, preset, algo, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per flag
    code, out, _ = cli("train", *args, "--help")
    assert code == 0
    cfg = config_for(env, preset, algo)
    flat = re.sub(r"\s+", " ", out)
    skip = {"env_id", "algo", "preset", "seed", "num_seeds", "total_steps", "backend"}
    for f in dataclasses.fields(Config):
        if f.name in skip:
            continue
        value = getattr(cfg, f.name)
        source = f"preset {cfg.preset}" if value != getattr(Config(), f.name) \
            else "Config default"
        assert f"This run: {_shown(value)} ({source})." in flat.split(
            f"--{f.name.replace('_', '-')} V ")[1].split(" --")[0], f.name
        if f.name in CHOICES:
            assert f"Choices: {', '.join(CHOICES[f.name])}." in flat
    assert "(default: None)" not in out
    assert f"env steps per seed (this run: {cfg.total_steps:,}" in flat


def test_presets_name_prints_every_value_and_marks_the_preset_s(cli):
    code, out, _ = cli("presets", "rainbow-minatar")
    assert code == 0
    cfg, default = PRESETS["rainbow-minatar"].config(), Config()
    lines = {line[3:].split(" = ")[0]: line for line in out.splitlines()[2:]}
    assert set(lines) == {f.name for f in dataclasses.fields(Config)}
    for f in dataclasses.fields(Config):
        marked = lines[f.name].startswith(" *")
        assert marked == (getattr(cfg, f.name) != getattr(default, f.name)), f.name
        assert lines[f.name].endswith(f"= {_shown(getattr(cfg, f.name))}")
    code, _, err = cli("presets", "nope")
    assert code == 2 and "unknown preset 'nope'" in err


def test_dry_run_prints_the_config_a_run_writes_and_writes_nothing(cli, tmp_path):
    args = ["--env", "Acrobot-v1", "--seeds", "2", "--set", "hidden_sizes=32,32",
            "--learning-rate", "5e-4"]
    code, out, _ = cli("train", *args, "--out", tmp_path / "dry", "--dry-run")
    assert code == 0 and not (tmp_path / "dry").exists()
    run_deepq("train", *args, "--out", str(tmp_path / "real"), "--total-steps", "1000",
              "--quiet", "--no-artifacts", check=True)
    written = json.loads((tmp_path / "real" / "config.json").read_text())["config"]
    assert json.loads(out) == {**written, "total_steps": json.loads(out)["total_steps"]}
    code, out, _ = cli("train", "--resume", tmp_path / "real", "--total-steps", "3000",
                       "--dry-run")
    assert code == 0 and json.loads(out) == {**written, "total_steps": 3000}
    code, out, _ = cli("train", "--preset", "dqn,double", "--dry-run")
    assert [m["name"] for m in json.loads(out)["members"]] == ["dqn", "double"]


def test_config_files_sit_between_the_preset_and_set(cli, tmp_path):
    yaml_file = tmp_path / "hp.yaml"
    yaml_file.write_text("learning_rate: 0.002\nbatch-size: 32\nhidden_sizes: [16, 16]\n"
                         "preset: zoo-cartpole\n")
    code, out, _ = cli("train", "--config", yaml_file, "--set", "learning_rate=0.003",
                       "--batch-size", "16", "--dry-run")
    cfg = json.loads(out)
    zoo = PRESETS["zoo-cartpole"].config()
    assert code == 0 and cfg["preset"] == "zoo-cartpole"
    assert (cfg["learning_rate"], cfg["batch_size"], cfg["hidden_sizes"]) == (0.003, 16, [16, 16])
    assert cfg["gamma"] == zoo.gamma and cfg["buffer_size"] == zoo.buffer_size  # the preset's
    # a run's own config.json as the file: the same config again
    run_deepq("train", "--env", "Acrobot-v1", "--out", str(tmp_path / "run"), "--total-steps",
              "1000", "--quiet", "--no-artifacts", check=True)
    code, out, _ = cli("train", "--config", tmp_path / "run" / "config.json", "--dry-run")
    assert json.loads(out) == json.loads((tmp_path / "run" / "config.json").read_text())[
        "config"]


@pytest.mark.parametrize("text,suffix,needle", [
    ("lr: 1\n", ".yaml", "unknown key(s) lr"),
    ("learning_rate: fast\n", ".yaml", "learning_rate must be a number, got 'fast'"),
    ("hidden_sizes: [64, 0.5]\n", ".yml", "hidden_sizes must be integers"),
    ("[1, 2]\n", ".yaml", "must hold a mapping"),
    ("learning_rate: [\n", ".yaml", "is not valid YAML"),
    ('{"gamma": 0.9,}', ".json", "is not valid JSON"),
])
def test_bad_config_files_are_one_line(cli, tmp_path, text, suffix, needle):
    path = tmp_path / f"hp{suffix}"
    path.write_text(text)
    code, _, err = cli("train", "--config", path, "--out", tmp_path / "run")
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert str(path) in err and not (tmp_path / "run").exists()


def test_progress_lines_without_a_terminal(tmp_path):
    proc = subprocess.run([*DEEPQ, "train", "--out", str(tmp_path / "run"), "--total-steps",
                           "3000", *[a for a in TINY if a != "--quiet"], "--no-artifacts"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    chunks = [ln for ln in proc.stderr.splitlines() if ln.startswith("train steps")
              and "(in a chunk)" not in ln]
    assert [ln.split()[2] for ln in chunks] == [f"{n:,}/3,000" for n in range(500, 3001, 500)]
    assert all(re.search(r"episodes \d+ +return [-\d.]+ +[\d,]+ steps/s +elapsed "
                         r"\d:\d\d:\d\d +eta ", ln) for ln in chunks)
    quiet = run_deepq("train", "--out", str(tmp_path / "q"), "--total-steps", "1000", *TINY,
                      "--no-artifacts")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_long_chunk_still_logs_every_so_often(capsys):
    """Between chunks (a compile, a long Atari chunk) a line comes at least every `every`
    seconds."""
    from deepq.training import _Progress

    progress = _Progress(total=1000, done=0, enabled=True, every=0.2)
    progress.update(100, 3, 12.5, 2000.0)
    time.sleep(0.7)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("train steps 100/1,000 (10%)  episodes 3  return 12.5  "
                               "2,000 steps/s")
    assert len(lines) >= 3 and all(ln.endswith("(in a chunk)") for ln in lines[1:])


def test_a_run_past_its_total_shows_100_percent_and_no_eta(capsys):
    """PQN trains whole rollouts, so its last line can pass the total: 101% and an eta of
    -1:59:59 would be wrong."""
    from deepq.training import _Progress

    progress = _Progress(total=1000, done=0, enabled=True)
    progress.start -= 100  # 100 s in: 50 steps/s, so 4,000 steps past the total are 80 s
    progress.update(5000, 3, 1.0, 50.0)
    progress.close()
    line = capsys.readouterr().err.splitlines()[0]
    assert "5,000/1,000 (100%)" in line and line.endswith("eta 0:00:00"), line


def test_the_replay_line_only_for_algorithms_with_a_replay():
    from deepq.cli import start_notes

    def notes(algo, **kw):
        return start_notes(config_for("ALE/Pong-v5", algo=algo, **kw))

    assert notes("dqn")[0] == ("replay: 1,000,000 transitions x 1 seed(s), one 84x84 uint8 "
                               "frame each: at most 7.07 GB")
    assert not any(n.startswith("replay") for n in notes("pqn", preset="pqn-atari"))


def test_a_bar_on_a_terminal(tmp_path):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    os.set_blocking(leader, False)
    proc = subprocess.Popen([*DEEPQ, "train", "--out", str(tmp_path / "run"), "--total-steps",
                             "2000", *[a for a in TINY if a != "--quiet"], "--no-artifacts"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=follower, cwd=ROOT)
    os.close(follower)
    seen = b""
    while proc.poll() is None or _readable(leader):
        try:
            seen += os.read(leader, 65536)
        except (BlockingIOError, OSError):
            if proc.poll() is not None:
                break
    os.close(leader)
    assert proc.returncode == 0
    text = seen.decode(errors="replace")
    assert "train" in text and "steps/s" in text and "0/2000" in text and "2000/20" in text


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0.1)[0])


def _scalars(tb_dir: Path) -> set[str]:
    """The tags of every scalar in a TensorBoard dir's event files (TFRecord framing)."""
    tags = set()
    for path in tb_dir.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            tags |= {v.tag for v in event.summary.value}
            at += 12 + length + 4
    return tags


def test_tensorboard_gets_speed_selection_and_eval_scores(tmp_path):
    run = tmp_path / "run"
    run_deepq("train", "--out", str(run), "--total-steps", "2000", *TINY, "--set",
              "select_every=1000", "--set", "select_episodes=2", check=True)
    tags = _scalars(run / "tb" / "seed_0")
    assert {"perf/steps_per_sec", "select/best_score", "eval/mean_return",
            "episode/return"} <= tags


def test_compare_warns_about_budgets_and_gives_no_ci_for_one_seed(tmp_path):
    for name, steps in (("a", "1000"), ("b", "2000")):
        run_deepq("train", "--out", str(tmp_path / name), "--total-steps", steps, *TINY,
                  "--no-artifacts", check=True)
    proc = run_deepq("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                     str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ("deepq: warning: CartPole-v1: the methods ran different "
                                   "budgets (a 1,000, b 2,000 steps per seed): their final "
                                   "scores are not like for like")
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert table.startswith("> warning: CartPole-v1: the methods ran different budgets")
    assert table.count("(one seed: no CI)") == 4 and "[" not in table.split("|---|")[-1]
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["envs"][
        "CartPole-v1"][0]["iqm_ci"] is None


def test_import_deepq_changes_nothing_process_wide():
    """`import deepq` leaves XLA's flags and malloc alone; the command line opts in."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "DEEPQ_CPU_DEVICES")}
    probe = ("import os, jax; print(jax.device_count(), os.environ.get('XLA_FLAGS', '-'))")
    plain = subprocess.run([sys.executable, "-c", "import deepq; " + probe], env=env,
                           capture_output=True, text=True, check=True)
    assert plain.stdout.split() == ["1", "-"]
    cores = min(len(os.sched_getaffinity(0)), 16)
    for opt_in in ("import deepq.cpu; deepq.cpu.setup_process()", "import deepq.__main__"):
        out = subprocess.run([sys.executable, "-c", f"{opt_in}; {probe}"], env=env,
                             capture_output=True, text=True, check=True)
        assert out.stdout.split()[0] == str(cores)


def test_the_curve_plotter_child_draws_without_jax(tmp_path):
    """The child that draws curves.png beside the eval and the GIF imports no JAX (0.7 s)
    and succeeds on its own, so the trainer never draws the curves a second time."""
    probe = "import sys, deepq.report; print(sorted({'jax', 'flax'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    run = tmp_path / "run"
    run.mkdir()
    (run / METRICS_FILE).write_text(",".join(COLUMNS) + "\n" + "\n".join(
        f"0,{10 * e},{e},{e}.0,10,0.1,0.5,1.0,100.0" for e in range(1, 30)) + "\n")
    child = start_plot_process(run, tmp_path / "curves.png")
    assert child.wait(timeout=120) == 0, child.stderr.read()
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _wandb_records(path: Path) -> list:
    """The protobuf records of an offline W&B run file (LevelDB log framing: 32 KiB blocks,
    each record a 7-byte header (crc, length, type: 1 whole, 2-4 first/middle/last))."""
    from wandb.proto import wandb_internal_pb2

    data, pos, records, part = path.read_bytes(), 7, [], b""  # 7: the file's own header
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if left < 7 or (kind == 0 and length == 0):  # the block's zero padding
            pos += left
            continue
        body, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        part = body if kind in (1, 2) else part + body
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(part)
            records.append(record)
    return records


def test_track_logs_config_progress_results_and_curves_offline(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    proc = subprocess.run([*DEEPQ, "train", "--out", str(out), "--total-steps", "2000",
                           *TINY, "--set", "gif=true", "--track", "deepq-test"], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [run_file] = out.glob("wandb/offline-run-*/run-*.wandb")
    records = _wandb_records(run_file)
    name = lambda item: item.key or "/".join(item.nested_key)  # noqa: E731
    logged = {name(i) for r in records if r.HasField("history") for i in r.history.item}
    assert {"clock", "recent_return", "steps_per_sec", "eval/mean", "train_seconds",
            "curves/path"} <= logged
    [run] = [r.run for r in records if r.HasField("run")]
    config = {name(i): i.value_json for i in run.config.update}
    assert run.project == "deepq-test" and json.loads(config["learning_rate"]) == 1e-3
    assert {"clock": 2000} == {k: json.loads(v) for k, v in
                               ((name(i), i.value_json) for r in records
                                if r.HasField("summary") for i in r.summary.update)
                               if k == "clock"}


def test_track_without_wandb_names_its_install(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)
    code, _, err = cli("train", "--out", tmp_path / "run", "--track", "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert 'needs Weights & Biases: pip install -e ".[track]"' in err
    assert not (tmp_path / "run").exists()
