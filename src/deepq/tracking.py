"""Experiment tracking on Weights & Biases (`--track`, as CleanRL's and SB3's): the config,
every chunk's progress, the final summary and eval, and curves.png. Optional: `pip install
-e ".[track]"`; `WANDB_MODE=offline` keeps the run on disk (`wandb sync` uploads it later).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepq.config import Config
from deepq.errors import UserError

TRACK_INSTALL = 'pip install -e ".[track]"'


def import_wandb():
    try:
        import wandb
    except ImportError:
        raise UserError(f"--track needs Weights & Biases: {TRACK_INSTALL}") from None
    return wandb


class Tracker:
    """One W&B run for one deepq run dir; its files go under RUN/wandb."""

    def __init__(self, project: str, run_dir: Path, cfg: Config, resume: bool):
        wandb = import_wandb()
        self._wandb = wandb
        name = Path(run_dir).resolve().name
        self.run = wandb.init(project=project, name=name, dir=str(run_dir),
                              config=cfg.to_dict(), group=Path(run_dir).resolve().parent.name,
                              job_type=cfg.algo, reinit="create_new",
                              resume="allow" if resume else None)

    def chunk(self, progress: dict) -> None:
        metrics = {"clock": progress["clock"], "episodes": progress["episodes"],
                   "steps_per_sec": progress["steps_per_sec"]}
        if progress["recent_return"] is not None:
            metrics["recent_return"] = progress["recent_return"]
        self.run.log(metrics, step=progress["clock"])

    def finish(self, run_dir: Path, summary: dict, evaluation: dict | None) -> None:
        done: dict[str, Any] = {k: v for k, v in summary.items()
                                if isinstance(v, int | float) and not isinstance(v, bool)}
        if evaluation is not None:
            done["eval/mean"] = evaluation["mean"]
            done["eval/std"] = evaluation["std"]
        curves = Path(run_dir) / "curves.png"
        if curves.exists():
            done["curves"] = self._wandb.Image(str(curves))
        self.run.log(done)
        self.run.summary.update({k: v for k, v in done.items() if k != "curves"})
        self.run.finish()

    def close(self) -> None:
        """End the W&B run without a summary (training stopped early)."""
        self.run.finish(exit_code=1)
