"""Learning checks too slow for CI's default run: `make test-slow`."""

import json

import pytest

from tests.helpers import run_deepq


@pytest.mark.slow
def test_default_cartpole_preset_learns(tmp_path):
    run = tmp_path / "cp"
    run_deepq("train", "--env", "CartPole-v1", "--seeds", "2", "--out", str(run), "--quiet",
              "--set", "gif=false", check=True, timeout=1800)
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 100
    assert min(result["per_seed_mean"]) >= 475, result["per_seed_mean"]  # random: ~22


@pytest.mark.slow
def test_host_driver_learns_cartpole(tmp_path):
    run = tmp_path / "host"
    run_deepq("train", "--env", "CartPole-v1", "--backend", "gymnasium", "--out", str(run),
              "--quiet", "--set", "gif=false", check=True, timeout=3600)
    assert json.loads((run / "eval.json").read_text())["mean"] >= 475
