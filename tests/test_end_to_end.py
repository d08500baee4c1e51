"""Real runs on real envs: jitted (gymnax) and host (Gymnasium) drivers, eval, record, plot."""

import json

import numpy as np
import pytest

import deepq
from deepq import checkpoint
from deepq.config import Config
from tests.helpers import TINY, run_deepq


def _eval(run, episodes=20):
    proc = run_deepq("eval", str(run), "--episodes", str(episodes), "--json", check=True)
    return json.loads(proc.stdout)


def test_short_jitted_run_beats_the_random_agent(tmp_path):
    trained, random = tmp_path / "dqn", tmp_path / "random"
    proc = run_deepq("train", "--out", str(trained), *TINY, "--total-steps", "8000",
                     "--set", "num_envs=1", "--set", "learning_rate=1e-3",
                     "--set", "target_update_interval=100", "--set", "loss=mse",
                     "--set", "epsilon_fraction=0.3", check=True)
    assert "eval over 5 episodes" in proc.stdout
    run_deepq("train", "--out", str(random), *TINY, "--algo", "random", "--total-steps", "2000",
              check=True)
    ours, base = _eval(trained), _eval(random)
    assert {"mean", "std", "min", "max", "episodes", "per_seed_mean"} <= set(ours)
    assert ours["episodes"] == 20 and len(ours["per_seed_mean"]) == 1
    assert base["mean"] < 40  # random CartPole lasts ~22 steps
    assert ours["mean"] > 2 * base["mean"], (ours["mean"], base["mean"])
    for name in ("config.json", "metrics.csv", "curves.png", "eval.json", "summary.json"):
        assert (trained / name).exists(), name
    assert any((trained / "tb" / "seed_0").iterdir())
    header = (trained / "metrics.csv").read_text().splitlines()[0]
    assert header == "seed,env_step,episode,return,length,epsilon,loss,q_mean,steps_per_sec"


def test_host_driver_trains_on_gymnasium(tmp_path):
    run = tmp_path / "host"
    run_deepq("train", "--out", str(run), *TINY, "--backend", "gymnasium", "--total-steps",
              "1500", "--seeds", "2", check=True)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["backend"] == "gymnasium"
    result = _eval(run, episodes=3)
    assert len(result["per_seed_mean"]) == 2
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in rows} == {"0", "1"}
    steps = [int(r.split(",")[1]) for r in rows]
    assert max(steps) <= 1500 and steps == sorted(steps)


def test_record_gif_and_mp4_and_plot(tmp_path):
    run = tmp_path / "run"
    run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1000", check=True)
    for name in ("ep.gif", "ep.mp4"):
        proc = run_deepq("record", str(run), "--out", str(tmp_path / name), check=True)
        assert (tmp_path / name).stat().st_size > 1000, proc.stdout
    import imageio.v3 as iio

    frames = iio.imread(tmp_path / "ep.gif")
    assert frames.ndim == 4 and frames.shape[0] > 5
    run_deepq("plot", str(run), str(run), "--out", str(tmp_path / "both.png"), check=True)
    assert (tmp_path / "both.png").stat().st_size > 10_000


def test_python_api(tmp_path):
    cfg = Config(total_steps=1000, hidden_sizes=(16,), buffer_size=1000, batch_size=16,
                 learning_starts=100, chunk_steps=500, eval_episodes=2, gif=False, num_seeds=2)
    run = deepq.train(cfg, tmp_path / "api", progress=False)
    assert run.config == cfg
    obs = np.zeros((3, 4), np.float32)
    actions = run.predict(obs, seed_index=1)
    assert actions.shape == (3,) and set(actions.tolist()) <= {0, 1}
    assert run.predict(obs[0]) in (0, 1)
    loaded = deepq.load(tmp_path / "api")
    np.testing.assert_array_equal(loaded.predict(obs, seed_index=1), actions)
    copy = loaded.save(tmp_path / "copy")
    assert deepq.load(copy).evaluate(episodes=2)["episodes"] == 2


@pytest.mark.parametrize("backend", ["gymnax", "gymnasium"])
def test_selection_stops_early_and_keeps_the_selected_params(tmp_path, backend):
    run = tmp_path / "sel"
    # Any greedy mean is >= -1, so the stop is reached at the first selection evaluation.
    run_deepq("train", "--out", str(run), *TINY, "--backend", backend, "--total-steps", "4000",
              "--set", "select_every=1000", "--set", "select_episodes=3",
              "--set", "stop_at_return=-1", "--no-artifacts", check=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps_per_seed"] == 1000 and summary["stopped_early"] is True
    score = summary["selected_scores"][0]
    assert 8 <= score <= 500  # CartPole returns of three greedy episodes
    carry = checkpoint.read_raw(checkpoint.latest(run))["state"]["carry"]
    loaded = deepq.load(run)
    np.testing.assert_array_equal(loaded.params["params"]["Dense_0"]["kernel"],
                                  carry["best"]["params"]["params"]["Dense_0"]["kernel"])
    # Resuming a run that reached its stop does not train further.
    run_deepq("train", "--resume", str(run), "--quiet", "--no-artifacts", check=True)
    assert json.loads((run / "summary.json").read_text())["steps_per_seed"] == 1000
