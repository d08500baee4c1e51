"""Grids and searches on Ray: a local Ray in the default run; a real two-node cluster (a head
and a worker node started here, each with its own ports and temp dir) under the `ray`
marker (`make test-ray`): trials on both nodes, a dead worker node, a killed driver, a
search."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepq import checkpoint
from tests.helpers import TINY, run_deepq, start_deepq, wait_for

pytestmark = pytest.mark.e2e

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
SHORT = [*TINY, "--set", "checkpoint_every=1000"]




def test_without_ray_the_executor_names_its_install(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, _, err = cli("train", "--executor", "ray", "--out", tmp_path / "g", "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert 'needs Ray: pip install -e ".[ray]"' in err
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("args,needle", [
    (["--address", "127.0.0.1:1"], "--address needs --executor ray"),
    (["--search", "learning_rate=loguniform:1e-5:1e-3"], "--search needs --executor ray"),
    (["--executor", "ray", "--search", "learning_rate=1e-3"], "write KEY=KIND:ARGS"),
    (["--executor", "ray", "--search", "learning_rate=loguniform:1e-3:1e-5"],
     "need 0 < LOW < HIGH"),
    (["--executor", "ray", "--search", "learning_rate=uniform:0:1e-3"], "learning_rate must be"),
    (["--executor", "ray", "--search", "n_step=choice:1,x"], "n_step=x"),
    (["--executor", "ray", "--search", "nope=choice:1"], "unknown hyperparameter 'nope'"),
    (["--executor", "ray", "--search", "n_step=choice:1,3", "--preset", "dqn,double"],
     "give one --preset"),
    (["--executor", "ray", "--search", "n_step=choice:1,3", "--num-samples", "0"],
     "--num-samples must be positive"),
    (["--executor", "ray", "--cpus-per-trial", "0"], "--cpus-per-trial must be positive"),
])
def test_ray_flags_are_checked_before_ray_starts(cli, tmp_path, args, needle):
    code, _, err = cli("train", "--out", tmp_path / "g", *args, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert needle in err, err
    assert not (tmp_path / "g").exists()


def _summaries(grid: Path) -> dict[str, dict]:
    members = json.loads((grid / "grid.json").read_text())["members"]
    return {m["name"]: json.loads((grid / m["name"] / "summary.json").read_text())
            for m in members}


def test_a_grid_on_a_local_ray_writes_run_dirs_that_compare_joins(tmp_path):
    grid = tmp_path / "grid"
    proc = run_deepq("train", "--preset", "dqn,double", "--executor", "ray", "--out", str(grid),
                     *TINY, "--total-steps", "2000", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "os.fork" not in proc.stderr  # JAX's fork warning, as Ray starts its processes
    summaries = _summaries(grid)
    assert set(summaries) == {"dqn", "double"}
    assert all(len(s["node"]) > 20 and s["steps_per_seed"] == [2000]
               for s in summaries.values())
    table = json.loads((grid / "compare.json").read_text())
    assert sorted(r["label"] for r in table["envs"]["CartPole-v1"]) == ["double", "dqn"]


# -- a two-node cluster ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, env: dict) -> None:
    ray = Path(sys.executable).parent / "ray"
    proc = subprocess.run([str(ray), *args], capture_output=True, text=True, env=env,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _kill_processes_of(temp_dir: Path) -> None:
    """SIGKILL every process whose command line names `temp_dir` (one Ray node's)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(temp_dir).encode() in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = dict(os.environ, **RAY_ENV)
        self.head_dir, self.worker_dir = root / "head", root / "worker"

    def start_head(self) -> None:
        _ray("start", "--head", "--port", str(self.port), "--num-cpus", "1",
             "--include-dashboard", "false", "--temp-dir", str(self.head_dir),
             "--disable-usage-stats", env=self.env)

    def start_worker(self) -> None:
        _ray("start", "--address", self.address, "--num-cpus", "1",
             "--temp-dir", str(self.worker_dir), env=self.env)

    def kill_worker(self) -> None:
        _kill_processes_of(self.worker_dir)

    def stop(self) -> None:
        _kill_processes_of(self.worker_dir)
        _kill_processes_of(self.head_dir)

    def deepq(self, *args: str, **popen) -> subprocess.Popen:
        return start_deepq(*args, "--executor", "ray", "--address", self.address,
                           env=self.env, **popen)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("ray"))
    c.start_head()
    c.start_worker()
    yield c
    c.stop()


def _wait(proc: subprocess.Popen, timeout: float = 600) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (err or "")[-3000:]


@pytest.mark.ray
def test_a_grid_runs_its_trials_on_both_nodes(cluster, tmp_path):
    grid = tmp_path / "grid"
    _wait(cluster.deepq("train", "--preset", "dqn,double,dueling,nstep", "--out", str(grid),
                        *SHORT, "--total-steps", "6000", stderr=subprocess.PIPE, text=True))
    nodes = {s["node"] for s in _summaries(grid).values()}
    assert len(nodes) == 2, nodes


@pytest.mark.ray
def test_a_search_writes_a_best_config_the_next_run_reads(cluster, tmp_path):
    out = tmp_path / "search"
    proc = cluster.deepq("train", "--out", str(out), *SHORT, "--total-steps", "4000",
                         "--search", "learning_rate=loguniform:1e-4:1e-2",
                         "--search", "n_step=choice:1,3", "--num-samples", "4",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_text, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    best = json.loads((out / "best_config.json").read_text())
    assert 1e-4 <= best["config"]["learning_rate"] <= 1e-2
    assert best["config"]["n_step"] in (1, 3) and "best: learning_rate=" in out_text
    assert len(list(out.glob("trial_*"))) == 4
    proc = run_deepq("train", "--config", str(out / "best_config.json"), "--out",
                     str(tmp_path / "again"), "--total-steps", "1000", "--quiet",
                     "--no-artifacts")
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "again" / "config.json").read_text())["config"]
    assert again["learning_rate"] == best["config"]["learning_rate"]


@pytest.mark.ray
def test_a_killed_driver_resumes_the_grid_without_retraining_finished_members(cluster,
                                                                               tmp_path):
    grid = tmp_path / "grid"  # three members on two one-CPU nodes: the third waits
    driver = cluster.deepq("train", "--preset", "dqn,double,dueling", "--out", str(grid),
                           *SHORT, "--set", "stop_at_return=inf", "--total-steps", "20000")
    finished = lambda: list(grid.glob("*/summary.json"))  # noqa: E731
    assert wait_for(finished, driver, timeout=600)
    driver.kill()
    driver.wait()
    done = {p: p.read_bytes() for p in finished()}
    assert 1 <= len(done) < 3
    _wait(cluster.deepq("train", "--resume", str(grid), stderr=subprocess.PIPE, text=True))
    assert all(p.read_bytes() == b for p, b in done.items())  # not retrained
    assert len(_summaries(grid)) == 3


@pytest.mark.ray
def test_a_dead_worker_node_loses_no_member(cluster, tmp_path):
    """The trial on the killed node is restarted on the head and resumes from its newest
    checkpoint (summary.json's resumed_from)."""
    grid = tmp_path / "grid"
    driver = cluster.deepq("train", "--preset", "dqn,double", "--out", str(grid), *SHORT,
                           "--set", "stop_at_return=inf", "--total-steps", "100000",
                           stderr=subprocess.PIPE, text=True)
    both = lambda: all(checkpoint.list_checkpoints(grid / m) for m in ("dqn", "double"))  # noqa
    assert wait_for(both, driver, timeout=600)
    cluster.kill_worker()
    _wait(driver)
    summaries = _summaries(grid)
    assert all(s["steps_per_seed"] == [100000] for s in summaries.values())
    resumed = [s for s in summaries.values() if s["resumed_from"]]
    assert len(resumed) == 1 and 0 < resumed[0]["resumed_from"] < 100000
    assert len({s["node"] for s in summaries.values()}) == 1  # both ended on the head
    cluster.start_worker()
    time.sleep(1)
