"""deepq: deep Q-learning agents as pure JAX functions, with two drivers and a command line.

    import deepq
    run = deepq.train(deepq.Config(env_id="CartPole-v1"), "runs/cp")
    print(run.evaluate(episodes=100)["mean"])
"""

from deepq.config import PRESETS, Config, base_config
from deepq.errors import DivergedError, UserError

__version__ = "0.1.0"


def train(config: Config | None = None, out="runs/latest", **kwargs):
    """Train a run; see deepq.run.train."""
    from deepq.run import train as _train

    return _train(config, out, **kwargs)


def load(path):
    """Load a trained run directory; see deepq.run.Run."""
    from deepq.run import Run

    return Run.load(path)


__all__ = ["Config", "PRESETS", "base_config", "train", "load", "UserError", "DivergedError",
           "__version__"]
