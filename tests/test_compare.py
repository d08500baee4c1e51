"""deepq compare and grids: scores per seed, IQM and mean with bootstrap CIs, grid runs."""

import csv
import dataclasses
import json
import re
import warnings

import numpy as np
import pytest
import scipy.stats

from deepq.compare import (
    Scores,
    _bootstrap,
    _windowed_means,
    compare,
    curve_estimates,
    interval_estimates,
    merge,
    run_scores,
)
from deepq.compare import warnings as unlike_warnings
from deepq.config import Config
from deepq.errors import UserError
from deepq.report import COLUMNS
from deepq.rundir import write_config
from tests.helpers import TINY, run_deepq
from tests.test_cli_errors import assert_clean_error


def test_curve_windows_by_hand():
    metrics = {"seed": np.array([0, 0, 0, 0, 1]),
               "env_step": np.array([150, 180, 420, 990, 500]),
               "episode": np.array([1, 2, 3, 4, 1]),
               "return": np.array([10.0, 20.0, 40.0, 80.0, 7.0])}
    grid = np.array([250.0, 500.0, 750.0, 1000.0])
    # (0, 250]: 10 and 20; (250, 500]: 40; (500, 750]: none, so 40 again; (750, 1000]: 80
    np.testing.assert_allclose(_windowed_means(metrics, 0, grid), [15.0, 40.0, 40.0, 80.0])
    # Before the first episode a window takes that episode's return.
    np.testing.assert_allclose(_windowed_means(metrics, 1, grid), [7.0, 7.0, 7.0, 7.0])
    # Counted in episodes (REINFORCE): (0, 2] holds episodes 1 and 2, (2, 4] episodes 3 and 4.
    np.testing.assert_allclose(_windowed_means(metrics, 0, np.array([2.0, 4.0]), "episode"),
                               [15.0, 60.0])


# 12 seeds' final scores, one an outlier: IQM 8, median 8.5, mean 15.17 all differ.
SKEWED = np.array([9.0, 100.0, 2.0, 14.0, 1.0, 8.0, 12.0, 3.0, 15.0, 2.0, 11.0, 5.0])


def _iqm(x):
    """Interquartile mean of a multiple of 4 values: the mean of the middle half of the
    sorted values (Agarwal et al. 2021, sec. 4)."""
    x = np.sort(x, axis=-1)
    n = x.shape[-1]
    return x[..., n // 4: n - n // 4].mean(axis=-1)


def test_iqm_and_mean_point_estimates_by_hand():
    scores = {"a": SKEWED[:, None], "same": np.full((5, 1), 3.0)}
    point, ci = interval_estimates(scores, reps=500)
    # Sorted: 1 2 2 | 3 5 8 9 11 12 | 14 15 100: the IQM is the mean of the middle six.
    assert point["a"][0] == pytest.approx((3 + 5 + 8 + 9 + 11 + 12) / 6)
    assert point["a"][0] == pytest.approx(scipy.stats.trim_mean(SKEWED, 0.25))
    assert point["a"][1] == pytest.approx(182 / 12)
    # Identical seeds leave nothing to resample: the intervals collapse to the value.
    np.testing.assert_allclose(ci["same"], [[3.0, 3.0], [3.0, 3.0]])


def test_mean_ci_matches_an_independent_percentile_bootstrap():
    rng = np.random.default_rng(3)
    x = rng.normal(100.0, 20.0, size=12)
    _, ci = interval_estimates({"m": x[:, None]}, reps=20_000)
    means = x[rng.integers(0, 12, size=(20_000, 12))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    assert ci["m"][0][1] == pytest.approx(lo, abs=1.0)
    assert ci["m"][1][1] == pytest.approx(hi, abs=1.0)


def test_bootstrap_is_stratified_over_tasks():
    """Two tasks of very different scale: resampling within each task keeps one run of
    each in every resample, so the mean never leaves the range of per-task averages."""
    scores = np.stack([np.array([0.0, 1.0, 2.0, 3.0]), np.array([100.0, 101.0, 102.0, 103.0])],
                      axis=1)
    point, ci = interval_estimates({"m": scores}, reps=2000)
    assert point["m"][1] == pytest.approx(51.5)
    # An unstratified resample of the 8 numbers could draw only task 0 (mean < 3).
    assert ci["m"][0][1] >= 50.0 and ci["m"][1][1] <= 53.0


def _write_run(path, cfg, returns, eval_means=None, env_steps=None, eval_episodes=10,
               eval_epsilon=0.0):
    """A run dir as `deepq train` leaves it: config.json, metrics.csv with one row per
    episode (the seeds' episodes interleaved, as the drivers log them), and eval.json when
    `eval_means` (one per seed) is given. `returns`: [seeds, episodes]; `env_steps`: the env
    step at which each episode ended, [seeds, episodes] (default: every 100 steps)."""
    path.mkdir()
    write_config(path, cfg, "gymnax")
    with open(path / "metrics.csv", "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=COLUMNS)
        out.writeheader()
        for e in range(returns.shape[1]):
            for s, seed in enumerate(cfg.seeds):
                step = 100 * (e + 1) if env_steps is None else env_steps[s, e]
                out.writerow({"seed": seed, "env_step": step, "episode": e + 1,
                              "return": returns[s, e], "length": 100, "epsilon": 0.05,
                              "loss": 0.1, "q_mean": 1.0, "steps_per_sec": 1000.0})
    if eval_means is not None:
        doc = {"episodes": eval_episodes, "epsilon": eval_epsilon,
               "per_seed_mean": list(eval_means)}
        (path / "eval.json").write_text(json.dumps(doc))


def test_compare_json_final_iqm_ci_and_the_last_100_episodes_fallback(tmp_path):
    """compare.json's final scores: an evaluated run's IQM and mean of its per-seed eval
    means, with 95% CIs that match a percentile bootstrap over seeds written out here; a run
    without eval.json is scored by each seed's last 100 training episodes."""
    rng = np.random.default_rng(5)
    cfg = Config(total_steps=15_000, learning_starts=100)
    episodes = rng.normal(size=(12, 150)) * np.arange(1, 13)[:, None]  # seeds of every spread
    _write_run(tmp_path / "evaluated", cfg.replace(num_seeds=12), episodes,
               eval_means=SKEWED)
    trained = rng.normal(50.0, 20.0, size=(4, 150))  # distinct returns, 150 per seed
    trained[:, :50] += 100.0  # early episodes score apart from the last 100
    _write_run(tmp_path / "trained", cfg.replace(seed=10, num_seeds=4), trained)
    compare([tmp_path / "evaluated", tmp_path / "trained"], tmp_path / "cmp", points=5)
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["envs"]["CartPole-v1"]
    evaluated, fallback = rows

    assert evaluated["final_per_seed"] == SKEWED.tolist()
    assert evaluated["iqm"] == pytest.approx(8.0) and evaluated["mean"] == pytest.approx(182 / 12)
    boot = SKEWED[np.random.default_rng(1).integers(0, 12, size=(50_000, 12))]
    for stat, values in (("iqm", _iqm(boot)), ("mean", boot.mean(axis=1))):
        lo, hi = evaluated[f"{stat}_ci"]
        assert lo < evaluated[stat] < hi, stat
        want = np.percentile(values, [2.5, 97.5])
        np.testing.assert_allclose([lo, hi], want, atol=0.75 if stat == "iqm" else 1.5,
                                   err_msg=stat)

    # Its curve: per seed, the mean return of the episodes that end in each 3,000-step
    # window (30 episodes of 100 steps), then the IQM over the 12 seeds.
    windows = episodes.reshape(12, 5, 30).mean(axis=2)
    np.testing.assert_allclose(evaluated["curve_steps"], [3000, 6000, 9000, 12000, 15000])
    np.testing.assert_allclose(evaluated["curve_iqm"], _iqm(windows.T), rtol=1e-9)
    lo, hi = np.asarray(evaluated["curve_iqm_ci"])
    assert np.all(lo <= _iqm(windows.T)) and np.all(_iqm(windows.T) <= hi)

    assert fallback["final_source"] == "last 100 training episodes"
    last_100 = trained[:, -100:].mean(axis=1)
    np.testing.assert_allclose(fallback["final_per_seed"], last_100, rtol=1e-9)
    assert fallback["iqm"] == pytest.approx(np.sort(last_100)[1:3].mean())
    assert fallback["mean"] == pytest.approx(last_100.mean())
    lo, hi = fallback["iqm_ci"]
    assert lo <= fallback["iqm"] <= hi and lo < hi


def test_one_seed_gets_no_interval_and_two_seeds_get_one(tmp_path):
    """A bootstrap over seeds needs at least two: compare.json gives a single-seed method no
    CI (None) and a two-seed method an interval around its point estimate."""
    rng = np.random.default_rng(3)
    cfg = Config(total_steps=15_000, learning_starts=100)
    _write_run(tmp_path / "one", cfg, rng.normal(size=(1, 150)), eval_means=np.array([7.0]))
    _write_run(tmp_path / "two", cfg.replace(seed=5, num_seeds=2), rng.normal(size=(2, 150)),
               eval_means=np.array([3.0, 9.0]))
    compare([tmp_path / "one", tmp_path / "two"], tmp_path / "cmp", points=5)
    one, two = json.loads((tmp_path / "cmp" / "compare.json").read_text())["envs"][
        "CartPole-v1"]
    assert one["iqm_ci"] is None and one["mean_ci"] is None and one["mean"] == 7.0
    for stat in ("iqm", "mean"):
        lo, hi = two[f"{stat}_ci"]
        assert 3.0 <= lo <= two[stat] <= hi <= 9.0 and lo < hi, stat


def test_warnings_name_several_envs_and_different_budgets_on_one(tmp_path):
    """Like for like: one env and one budget gives no warning; several envs are named in
    order of first appearance; an env whose methods ran different budgets lists each
    method's budget in its unit; compare.json carries the warnings."""
    a, b = _scores("a", [0, 1]), _scores("b", [2, 3])
    assert unlike_warnings([a, b]) == []
    pong = dataclasses.replace(b, label="p", env_id="ALE/Pong-v5", unit="episodes")
    longer = dataclasses.replace(b, steps=2500)
    episodes = dataclasses.replace(longer, env_id="ALE/Pong-v5", unit="episodes")
    assert unlike_warnings([a, pong, longer, episodes]) == [
        "the runs span 2 envs (CartPole-v1, ALE/Pong-v5): each is compared on its own",
        "CartPole-v1: the methods ran different budgets (a 1,000, b 2,500 steps per seed): "
        "their final scores are not like for like",
        "ALE/Pong-v5: the methods ran different budgets (p 1,000, b 2,500 episodes per "
        "seed): their final scores are not like for like"]
    _dqn_run(tmp_path / "a", num_seeds=2)
    _write_run(tmp_path / "b", Config(total_steps=2000, learning_starts=100, num_seeds=2),
               np.random.default_rng(1).normal(size=(2, 20)))
    result = compare([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp", reps=100, points=2)
    doc = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert doc["warnings"] == result["warnings"] == [
        "CartPole-v1: the methods ran different budgets (a 4,000, b 2,000 steps per seed): "
        "their final scores are not like for like"]


def test_an_out_dir_that_cannot_be_made_is_named(tmp_path):
    _dqn_run(tmp_path / "a", num_seeds=2)
    (tmp_path / "file").write_text("not a dir")
    with pytest.raises(UserError) as err:
        compare([tmp_path / "a"], tmp_path / "file" / "cmp", reps=100, points=2)
    assert str(err.value) == (f"cannot write to --out {tmp_path / 'file' / 'cmp'}: Not a "
                              "directory; pick another --out")


def _scores(label, seeds):
    n = len(seeds)
    return Scores(label, "CartPole-v1", seeds, 1000, np.arange(n, dtype=float), "eval",
                  np.array([500.0, 1000.0]), np.zeros((n, 2)))


def test_runs_of_one_method_pool_their_seeds():
    merged = merge([_scores("dqn", [0, 1]), _scores("dqn", [2]), _scores("c51", [0])])
    assert [(m.label, m.seeds) for m in merged] == [("dqn", [0, 1, 2]), ("c51", [0])]
    with pytest.raises(UserError, match="--labels"):
        merge([_scores("dqn", [0, 1]), _scores("dqn", [1])])


def test_merge_pools_every_field():
    a = Scores("pg", "CartPole-v1", [0, 1], 40, np.array([1.0, 2.0]),
               "last 100 training episodes", np.array([20.0, 40.0]),
               np.array([[1.0, 2.0], [3.0, 4.0]]), "episodes")
    b = dataclasses.replace(a, seeds=[2], final=np.array([5.0]), curve=np.array([[6.0, 7.0]]))
    (m,) = merge([a, b])
    assert (m.label, m.env_id, m.seeds, m.steps) == ("pg", "CartPole-v1", [0, 1, 2], 40)
    assert (m.final_source, m.unit) == ("last 100 training episodes", "episodes")
    np.testing.assert_array_equal(m.final, [1.0, 2.0, 5.0])
    np.testing.assert_array_equal(m.curve_steps, [20.0, 40.0])
    np.testing.assert_array_equal(m.curve, [[1.0, 2.0], [3.0, 4.0], [6.0, 7.0]])


@pytest.mark.parametrize("change", [
    {"seeds": [1]},  # seed 1 twice
    {"steps": 50},  # another budget
    {"unit": "episodes"},  # another axis
    {"final_source": "eval: 10 episodes, epsilon 0"},  # scored another way
])
def test_merge_refuses_runs_that_are_not_one_methods_seeds(change):
    a = _scores("dqn", [0, 1])
    b = dataclasses.replace(_scores("dqn", [2]), **change)
    msg = ("two runs are both labelled 'dqn' on CartPole-v1 but share seeds or differ in "
           "steps or scoring: name them apart with --labels")
    with pytest.raises(UserError, match=f"^{re.escape(msg)}$"):
        merge([a, b])


def _dqn_run(path, seed=0, num_seeds=8, rng_seed=0):
    """A DQN run of 4,000 env steps per seed: 40 episodes of 100 steps, distinct returns."""
    returns = np.random.default_rng(rng_seed).normal(100.0, 30.0, size=(num_seeds, 40))
    _write_run(path, Config(total_steps=4000, learning_starts=100, seed=seed,
                            num_seeds=num_seeds), returns)
    return returns


def _reinforce_run(path):
    """A REINFORCE run of 40 episodes per seed, whose seeds end their episodes at different
    env steps."""
    rng = np.random.default_rng(7)
    returns = rng.normal(50.0, 20.0, size=(2, 40))
    env_steps = np.cumsum(rng.integers(10, 200, size=(2, 40)), axis=1)
    _write_run(path, Config(algo="reinforce", total_episodes=40, seed=3, num_seeds=2), returns,
               env_steps=env_steps)
    return returns


def test_run_scores_of_a_reinforce_run_count_episodes(tmp_path):
    returns = _reinforce_run(tmp_path / "pg")
    s = run_scores(tmp_path / "pg", points=4)
    assert (s.label, s.env_id, s.seeds, s.unit, s.steps) == ("pg", "CartPole-v1", [3, 4],
                                                             "episodes", 40)
    np.testing.assert_allclose(s.curve_steps, [10.0, 20.0, 30.0, 40.0])
    # Per seed, the mean return of episodes 1-10, 11-20, 21-30, 31-40.
    np.testing.assert_allclose(s.curve, returns.reshape(2, 4, 10).mean(axis=2), rtol=1e-9)
    assert s.final_source == "last 100 training episodes"
    np.testing.assert_allclose(s.final, returns.mean(axis=1), rtol=1e-9)


def test_run_scores_of_an_evaluated_dqn_run(tmp_path):
    cfg = Config(total_steps=4000, learning_starts=100, num_seeds=2)
    # Integral means, as a JSON writer that drops ".0" leaves them: still float scores.
    _write_run(tmp_path / "run", cfg, np.ones((2, 40)), eval_means=[500, 480],
               eval_episodes=27, eval_epsilon=0.05)
    s = run_scores(tmp_path / "run", "mine")
    assert (s.label, s.unit, s.steps) == ("mine", "steps", 4000)
    assert s.final_source == "eval: 27 episodes, epsilon 0.05"
    assert s.final.dtype == np.float64
    np.testing.assert_array_equal(s.final, [500.0, 480.0])
    # 20 points by default, as `deepq compare --points`: every 200 env steps.
    np.testing.assert_allclose(s.curve_steps, 200.0 * np.arange(1, 21))
    assert run_scores(tmp_path / "run").label == "run"


def test_run_scores_refuses_a_seed_without_episodes(tmp_path):
    cfg = Config(total_steps=4000, learning_starts=100)
    _write_run(tmp_path / "run", cfg, np.ones((1, 5)))  # seed 0's episodes only
    write_config(tmp_path / "run", cfg.replace(num_seeds=2), "gymnax")
    with pytest.raises(UserError, match=re.escape(
            "seed 1 has no finished episode yet; train it longer before comparing")):
        run_scores(tmp_path / "run")


def test_bootstrap_draws_reps_resamples():
    calls = []

    def mean(x):
        calls.append(x.shape)
        return np.array([x.mean()])

    counts = []
    for reps in (150, 300):
        calls.clear()
        _bootstrap({"m": SKEWED[:, None]}, mean, reps, 0)
        counts.append(len(calls))
        assert set(calls) == {(12, 1)}  # every resample draws 12 runs
    assert counts[1] - counts[0] == 150  # one statistic per resample, plus fixed overhead


def test_same_bootstrap_seed_gives_the_same_cis():
    """The CIs are reproducible: seed 0 by default, the same seed twice gives the same
    intervals, another seed other ones."""
    curves = np.random.default_rng(2).normal(size=(12, 1, 3))
    for estimate, scores in ((interval_estimates, {"m": SKEWED[:, None]}),
                             (curve_estimates, {"m": curves})):
        _, default = estimate(scores, 200)
        _, seed0 = estimate(scores, 200, seed=0)
        _, seed1 = estimate(scores, 200, seed=1)
        np.testing.assert_array_equal(default["m"], seed0["m"])
        assert not np.array_equal(seed0["m"], seed1["m"]), estimate.__name__
    # numpy's global generator, which rliable draws from, is left as it was found
    np.random.seed(11)
    expected = np.random.random(3)
    np.random.seed(11)
    interval_estimates({"m": SKEWED[:, None]}, 100, seed=4)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_bootstrap_hides_only_archs_future_warning():
    def noisy_mean(x):
        warnings.warn("from the statistic", RuntimeWarning, stacklevel=2)
        return np.array([x.mean()])

    with pytest.warns(RuntimeWarning, match="from the statistic"):
        _bootstrap({"m": SKEWED[:, None]}, noisy_mean, 100, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        interval_estimates({"m": SKEWED[:, None]}, 100)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_compare_refuses_bad_arguments(tmp_path):
    _dqn_run(tmp_path / "a", num_seeds=4)
    _dqn_run(tmp_path / "b", num_seeds=4)
    runs, out = [tmp_path / "a", tmp_path / "b"], tmp_path / "cmp"
    with pytest.raises(UserError, match=re.escape("--labels gives 1 names for 2 runs")):
        compare(runs, out, labels=["only"])
    with pytest.raises(UserError, match=re.escape(
            "--reps 99 is too few bootstrap samples: use at least 100")):
        compare(runs, out, reps=99)
    with pytest.raises(UserError, match=re.escape(
            "--points 1: a curve needs at least 2 points")):
        compare(runs, out, points=1)
    # REINFORCE counts episodes, DQN env steps: one env's curves would share no axis.
    _reinforce_run(tmp_path / "pg")
    with pytest.raises(UserError, match=re.escape(
            "CartPole-v1: REINFORCE runs count episodes and DQN runs env steps, so their "
            "curves share no axis: compare them separately")):
        compare([tmp_path / "a", tmp_path / "pg"], out)
    assert not out.exists()


def test_compare_at_the_fewest_reps_and_points(tmp_path):
    """reps 100 and points 2 are allowed; labels name the runs; compare.json is written
    (indented, into a new nested dir, or over an earlier one) with its confidence and reps."""
    a = _dqn_run(tmp_path / "a", num_seeds=8, rng_seed=1)
    _dqn_run(tmp_path / "b", seed=8, num_seeds=4, rng_seed=2)
    runs, out = [tmp_path / "a", tmp_path / "b"], tmp_path / "new" / "nested" / "cmp"
    result = compare(runs, out, labels=["A", "B"], reps=100, points=2)
    text = (out / "compare.json").read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2) + "\n"
    assert doc == result
    assert (doc["reps"], doc["confidence"]) == (100, 0.95)
    rows = doc["envs"]["CartPole-v1"]
    assert [r["label"] for r in rows] == ["A", "B"]
    assert [r["seeds"] for r in rows] == [list(range(8)), list(range(8, 12))]
    for r in rows:
        assert (r["unit"], r["steps_per_seed"]) == ("steps", 4000)
        assert r["curve_steps"] == [2000.0, 4000.0]
    # A's curve: per seed the mean of episodes 1-20 and 21-40, then the IQM over 8 seeds.
    np.testing.assert_allclose(rows[0]["curve_iqm"], _iqm(a.reshape(8, 2, 20).mean(2).T),
                               rtol=1e-9)

    (out / "compare.json").unlink()
    compare(runs, out, labels=["A", "B"], reps=100, points=2)  # into the existing dir
    assert json.loads((out / "compare.json").read_text())["reps"] == 100


def test_compare_defaults_are_the_clis(tmp_path):
    """As `deepq compare` and a grid run it: 2,000 resamples, 20 points."""
    _dqn_run(tmp_path / "a", num_seeds=8)
    result = compare([tmp_path / "a"], tmp_path / "cmp")
    assert result["reps"] == 2000
    np.testing.assert_allclose(result["envs"]["CartPole-v1"][0]["curve_steps"],
                               200.0 * np.arange(1, 21))


def test_compare_writes_the_same_intervals_every_time(tmp_path):
    """Same runs, same compare.json: the bootstrap is seeded (0 unless `seed` says else)."""
    _dqn_run(tmp_path / "a", num_seeds=6)
    first = compare([tmp_path / "a"], tmp_path / "one", reps=200)
    again = compare([tmp_path / "a"], tmp_path / "two", reps=200, seed=0)
    other = compare([tmp_path / "a"], tmp_path / "three", reps=200, seed=1)
    assert first == again
    assert (tmp_path / "one" / "compare.json").read_text() == \
        (tmp_path / "two" / "compare.json").read_text()
    row, row_other = first["envs"]["CartPole-v1"][0], other["envs"]["CartPole-v1"][0]
    assert row["iqm"] == row_other["iqm"]  # the point estimates do not resample
    assert row["iqm_ci"] != row_other["iqm_ci"]
    assert row["curve_iqm_ci"] != row_other["curve_iqm_ci"]


@pytest.mark.e2e
def test_grid_trains_each_preset_compares_and_resumes(tmp_path):
    grid = tmp_path / "grid"
    args = ["train", "--preset", "dqn,dueling", "--seeds", "2", "--total-steps", "1000",
            "--out", str(grid), *TINY, "--set", "qtrace_states=16"]
    proc = run_deepq(*args, check=True)
    assert "| dqn | 2 | 1,000 env steps |" in proc.stdout
    assert "| dueling | 2 | 1,000 env steps |" in proc.stdout
    doc = json.loads((grid / "compare.json").read_text())
    rows = doc["envs"]["CartPole-v1"]
    assert [r["label"] for r in rows] == ["dqn", "dueling"]
    for r in rows:  # the final scores are the eval's per-seed means
        ev = json.loads((grid / r["label"] / "eval.json").read_text())
        assert r["final_per_seed"] == ev["per_seed_mean"]
        assert r["mean"] == pytest.approx(np.mean(ev["per_seed_mean"]))
        assert r["mean_ci"][0] <= r["mean"] <= r["mean_ci"][1]
    assert json.loads((grid / "dueling" / "config.json").read_text())["config"]["dueling"]
    assert (grid / "compare.png").stat().st_size > 10_000

    # A member that did not finish is trained again on resume; the finished one is kept.
    kept = (grid / "dqn" / "summary.json").stat().st_mtime_ns
    (grid / "dueling" / "summary.json").unlink()
    run_deepq("train", "--resume", str(grid), "--quiet", check=True)
    assert (grid / "dqn" / "summary.json").stat().st_mtime_ns == kept
    assert (grid / "dueling" / "summary.json").exists()

    # The grid dir is not overwritten by accident, and compare reads it as its members.
    assert_clean_error(run_deepq(*args), "already exists", "--resume")
    out = tmp_path / "cmp"
    proc = run_deepq("compare", str(grid / "dqn"), str(grid / "dueling"), "--out", str(out),
                     "--labels", "A,B", check=True)
    assert "| A | 2 |" in proc.stdout and (out / "compare.md").exists()


@pytest.mark.e2e
def test_bad_grid_and_compare_input(tmp_path):
    grid = tmp_path / "g"
    proc = run_deepq("train", "--preset", "dqn,no-such", "--out", str(grid), *TINY)
    assert_clean_error(proc, "unknown preset 'no-such'")
    assert not grid.exists()
    # An env the driver refuses fails the whole grid before anything is written.
    proc = run_deepq("train", "--env", "LunarLander-v3", "--backend", "gymnax", "--preset",
                     "dqn,double", "--out", str(grid), "--quiet")
    assert_clean_error(proc, "LunarLander-v3")
    assert not grid.exists()
    assert_clean_error(run_deepq("compare", str(tmp_path)), "not a deepq run dir")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "grid.json").write_text("{")
    assert_clean_error(run_deepq("compare", str(broken)), "grid.json is missing or corrupt")
    assert_clean_error(run_deepq("compare", str(tmp_path / "none")), "does not exist")


def test_curve_iqm_is_rliables_iqm_at_every_point():
    from rliable import metrics

    from deepq.compare import curve_estimates

    x = np.random.default_rng(0).normal(size=(9, 2, 5))
    point, _ = curve_estimates({"m": x}, reps=100)
    np.testing.assert_allclose(point["m"], [metrics.aggregate_iqm(x[..., p]) for p in range(5)])
