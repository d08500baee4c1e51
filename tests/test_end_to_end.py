"""Real runs on real envs: jitted (gymnax) and host (Gymnasium) drivers, eval, record, plot."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image, ImageSequence

import deepq
import deepq.envs.families
from deepq import checkpoint
from deepq.config import Config
from deepq.envs.families import GymnasiumEpisodes
from tests.helpers import TINY, run_deepq

# Each test runs deepq in a subprocess (or trains a whole run): see the README's markers.
pytestmark = pytest.mark.e2e


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


def _counting_envs(played: list) -> type:
    """Gymnasium envs that count the steps played and keep the first drawn frame; every
    instance is appended to `played`."""

    class CountingEpisodes(GymnasiumEpisodes):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.steps, self.ended, self.first_frame = 0, False, None
            played.append(self)

        def frame(self):
            frame = super().frame()
            if self.first_frame is None:
                self.first_frame = frame
            return frame

        def step(self, actions):
            out = super().step(actions)
            self.steps += 1
            self.ended = bool(out[2][0])
            return out

    return CountingEpisodes


def test_record_gif_and_mp4_and_plot(tmp_path, monkeypatch):
    """A recording holds one frame for the reset and one per step the recorder played,
    each the env's rendered 400x600 frame."""
    run = tmp_path / "run"
    run_deepq("train", "--out", str(run), *TINY, "--total-steps", "1000", check=True)
    # The recorder's episode, played in this process on a Gymnasium env that counts steps.
    played = []
    monkeypatch.setattr(deepq.envs.families, "GymnasiumEpisodes", _counting_envs(played))
    loaded = deepq.load(run)
    loaded.record(tmp_path / "api.mp4")
    env = played[-1]
    assert env.ended and 5 < env.steps < 10_000  # the episode ended before --max-steps
    for name in ("ep.gif", "ep.mp4"):
        proc = run_deepq("record", str(run), "--out", str(tmp_path / name), check=True)
        assert (tmp_path / name).stat().st_size > 1000, proc.stdout
    # The same greedy episode three times: the API's MP4, the CLI's MP4 and GIF.
    for name in ("api.mp4", "ep.mp4", "ep.gif"):
        frames = iio.imread(tmp_path / name)  # MP4s decoded by ffmpeg
        if name.endswith(".gif"):
            # A GIF merges identical consecutive frames into one shown for longer (the
            # first steps can move the cart by less than a pixel): count the time instead,
            # 20 ms per frame at the default 50 fps.
            with Image.open(tmp_path / name) as gif:
                shown = sum(f.info["duration"] for f in ImageSequence.Iterator(gif))
            assert shown == (env.steps + 1) * 20 and len(frames) <= env.steps + 1
        else:
            assert len(frames) == env.steps + 1, name
        assert frames.shape[1:] == (400, 600, 3), name
        # The first frame is the reset's (to video compression and the GIF's palette).
        assert np.abs(frames[0].astype(int) - env.first_frame).mean() < 3, name
    # max_steps caps the episode: one frame per step played, plus the reset's.
    loaded.record(tmp_path / "cut.mp4", max_steps=4)
    assert played[-1].steps == 4 and not played[-1].ended
    assert iio.imread(tmp_path / "cut.mp4").shape == (5, 400, 600, 3)
    run_deepq("plot", str(run), str(run), "--out", str(tmp_path / "both.png"), check=True)
    assert (tmp_path / "both.png").stat().st_size > 10_000


def test_the_api_and_the_cli_resolve_the_same_config_and_record_its_preset(tmp_path):
    """`deepq.train(env_id=..., preset=..., **fields)` trains the config that `deepq train
    --env --preset --set` trains, and both write the preset the values came from."""
    fields = dict(total_steps=600, chunk_steps=300, learning_starts=100, eval_episodes=2,
                  select_every=0, gif=False, qtrace_states=0)
    sets = [arg for k, v in fields.items() for arg in ("--set", f"{k}={v}")]
    for preset, name in ((None, "cartpole"), ("double", "double")):
        cli, api = tmp_path / f"cli-{name}", tmp_path / f"api-{name}"
        flags = ["--preset", preset] if preset else []
        run_deepq("train", "--env", "CartPole-v1", *flags, *sets, "--out", str(cli),
                  "--quiet", "--no-artifacts", check=True)
        deepq.train(env_id="CartPole-v1", preset=preset, out=api, progress=False,
                    artifacts=False, **fields)
        docs = [json.loads((d / "config.json").read_text()) for d in (cli, api)]
        assert docs[0]["config"] == docs[1]["config"]
        assert docs[0]["preset"] == docs[1]["preset"] == docs[0]["config"]["preset"] == name
        assert docs[0]["citation"] == deepq.PRESETS[name].citation
    # The cartpole preset's own values, not Config()'s defaults (hidden 64,64, huber).
    cfg = json.loads((tmp_path / "api-cartpole" / "config.json").read_text())["config"]
    assert (cfg["hidden_sizes"], cfg["loss"]) == (list(deepq.PRESETS["cartpole"].overrides[
        "hidden_sizes"]), deepq.PRESETS["cartpole"].overrides["loss"])
    assert [cfg["hidden_sizes"], cfg["loss"]] != [[64, 64], "huber"]
    # A Config built by hand names no preset.
    hand = Config(total_steps=600, chunk_steps=300, learning_starts=100, gif=False)
    deepq.train(hand, tmp_path / "hand", progress=False, artifacts=False)
    assert json.loads((tmp_path / "hand" / "config.json").read_text())["preset"] is None


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
    assert summary["steps_per_seed"] == [1000] and summary["stopped_early"] is True
    score = summary["selected_scores"][0]
    assert 8 <= score <= 500  # CartPole returns of three greedy episodes
    carry = checkpoint.read_raw(checkpoint.latest(run))["state"]["carry"]
    loaded = deepq.load(run)
    np.testing.assert_array_equal(loaded.params["params"]["Dense_0"]["kernel"],
                                  carry["best"]["params"]["params"]["Dense_0"]["kernel"])
    # Resuming a run that reached its stop does not train further.
    run_deepq("train", "--resume", str(run), "--quiet", "--no-artifacts", check=True)
    assert json.loads((run / "summary.json").read_text())["steps_per_seed"] == [1000]
