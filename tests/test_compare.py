"""deepq compare and grids: scores per seed, IQM and mean with bootstrap CIs, grid runs."""

import csv
import json

import numpy as np
import pytest
import scipy.stats

from deepq.compare import Scores, _windowed_means, compare, interval_estimates, merge
from deepq.config import Config
from deepq.errors import UserError
from deepq.report import COLUMNS
from deepq.run import write_config
from tests.helpers import TINY, run_deepq
from tests.test_cli_errors import assert_clean_error


def test_curve_windows_by_hand():
    metrics = {"seed": np.array([0, 0, 0, 0, 1]),
               "env_step": np.array([150, 180, 420, 990, 500]),
               "return": np.array([10.0, 20.0, 40.0, 80.0, 7.0])}
    grid = np.array([250.0, 500.0, 750.0, 1000.0])
    # (0, 250]: 10 and 20; (250, 500]: 40; (500, 750]: none, so 40 again; (750, 1000]: 80
    np.testing.assert_allclose(_windowed_means(metrics, 0, grid), [15.0, 40.0, 40.0, 80.0])
    # Before the first episode a window takes that episode's return.
    np.testing.assert_allclose(_windowed_means(metrics, 1, grid), [7.0, 7.0, 7.0, 7.0])


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


def _write_run(path, cfg, returns, eval_means=None):
    """A run dir as `deepq train` leaves it: config.json, metrics.csv with one row per
    episode (the seeds' episodes interleaved, as the drivers log them), and eval.json when
    `eval_means` (one per seed) is given. `returns`: [seeds, episodes]."""
    path.mkdir()
    write_config(path, cfg, None, "gymnax")
    with open(path / "metrics.csv", "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=COLUMNS)
        out.writeheader()
        for e in range(returns.shape[1]):
            for s, seed in enumerate(cfg.seeds):
                out.writerow({"seed": seed, "env_step": 100 * (e + 1), "episode": e + 1,
                              "return": returns[s, e], "length": 100, "epsilon": 0.05,
                              "loss": 0.1, "q_mean": 1.0, "steps_per_sec": 1000.0})
    if eval_means is not None:
        doc = {"episodes": 10, "epsilon": 0.0, "per_seed_mean": list(eval_means)}
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


def _scores(label, seeds):
    n = len(seeds)
    return Scores(label, "CartPole-v1", seeds, 1000, np.arange(n, dtype=float), "eval",
                  np.array([500.0, 1000.0]), np.zeros((n, 2)))


def test_runs_of_one_method_pool_their_seeds():
    merged = merge([_scores("dqn", [0, 1]), _scores("dqn", [2]), _scores("c51", [0])])
    assert [(m.label, m.seeds) for m in merged] == [("dqn", [0, 1, 2]), ("c51", [0])]
    with pytest.raises(UserError, match="--labels"):
        merge([_scores("dqn", [0, 1]), _scores("dqn", [1])])


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
