"""Experiment tracking on Weights & Biases (`--track`, as CleanRL's and SB3's): the config,
every chunk's progress, the final summary and eval, and curves.png. Optional: `pip install
-e ".[track]"`; `WANDB_MODE=offline` keeps the run on disk (`wandb sync` uploads it later).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepq.config import Config
from deepq.errors import UserError
from deepq.rundir import CURVES_FILE, EVAL_FILE, SUMMARY_FILE

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
        self.finished = False
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

    def finish(self, run_dir: Path) -> None:
        """The finished run's summary.json numbers, its eval and curves.png, then the end."""
        run_dir = Path(run_dir)
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        done: dict[str, Any] = {k: v for k, v in summary.items()
                                if isinstance(v, int | float) and not isinstance(v, bool)}
        if (run_dir / EVAL_FILE).exists():
            evaluation = json.loads((run_dir / EVAL_FILE).read_text())
            done["eval/mean"] = evaluation["mean"]
            done["eval/std"] = evaluation["std"]
        curves = run_dir / CURVES_FILE
        if curves.exists():
            done["curves"] = self._wandb.Image(str(curves))
        self.run.log(done)
        self.run.summary.update({k: v for k, v in done.items() if k != "curves"})
        self.run.finish()
        self.finished = True

    def close(self) -> None:
        """End the W&B run without a summary (training stopped early)."""
        self.run.finish(exit_code=1)
