"""deepq compare and grids: scores per seed, IQM and mean with bootstrap CIs, grid runs."""

import json

import numpy as np
import pytest

from deepq.compare import Scores, _windowed_means, interval_estimates, merge
from deepq.errors import UserError
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


def test_iqm_and_mean_point_estimates_by_hand():
    scores = {"a": np.arange(1.0, 9.0)[:, None], "same": np.full((5, 1), 3.0)}
    point, ci = interval_estimates(scores, reps=500)
    # IQM of 1..8: the mean of the middle half, (3 + 4 + 5 + 6) / 4.
    assert point["a"][0] == pytest.approx(4.5)
    assert point["a"][1] == pytest.approx(4.5)
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


def _scores(label, seeds):
    n = len(seeds)
    return Scores(label, "CartPole-v1", seeds, 1000, np.arange(n, dtype=float), "eval",
                  np.array([500.0, 1000.0]), np.zeros((n, 2)))


def test_runs_of_one_method_pool_their_seeds():
    merged = merge([_scores("dqn", [0, 1]), _scores("dqn", [2]), _scores("c51", [0])])
    assert [(m.label, m.seeds) for m in merged] == [("dqn", [0, 1, 2]), ("c51", [0])]
    with pytest.raises(UserError, match="--labels"):
        merge([_scores("dqn", [0, 1]), _scores("dqn", [1])])


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
