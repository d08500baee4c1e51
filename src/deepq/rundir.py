"""The run directory: its files, a fresh one, and the config it was trained with.

    RUN/config.json        the resolved config, the preset it came from and its citation
    RUN/checkpoints/       step_<clock>.msgpack, the newest few (checkpoint.py)
    RUN/metrics.csv, tb/   one row per episode; TensorBoard (report.py)
    RUN/summary.json       how the run went: steps, seeds, timings, selection scores
    RUN/eval.json, curves.png, episode.gif, qtrace.csv, heldout_states.npy
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from deepq import checkpoint
from deepq._version import __version__
from deepq.config import Config
from deepq.errors import UserError
from deepq.presets import PRESETS

CONFIG_FILE = "config.json"
EVAL_FILE = "eval.json"
SUMMARY_FILE = "summary.json"
CURVES_FILE = "curves.png"
GIF_FILE = "episode.gif"
METRICS_FILE = "metrics.csv"
OURS = (CONFIG_FILE, EVAL_FILE, SUMMARY_FILE, CURVES_FILE, GIF_FILE, METRICS_FILE, "tb",
        checkpoint.CHECKPOINT_DIR, "qtrace.csv", "heldout_states.npy")


def cannot_write(path: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write to output dir {path}: {exc.strerror}; pick another --out")


def check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".deepq-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise cannot_write(path, exc) from None


def prepare_new_run(out: Path, force: bool) -> None:
    """A fresh run dir. An existing non-empty one needs --force (deepq files only are removed)."""
    try:
        exists = out.exists()  # raises for a path the OS cannot look up (a name over 255 bytes)
    except OSError as exc:
        raise cannot_write(out, exc) from None
    if exists and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: pick another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UserError(
                f"run dir {out} already exists: pass --resume {out} to continue it, or --force "
                "to overwrite it"
            )
        if not (out / CONFIG_FILE).exists():
            raise UserError(f"--force would overwrite {out}, which is not a deepq run dir "
                            "(no config.json): pick another --out")
        check_writable(out)
        for name in OURS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    check_writable(out)


def read_doc(run_dir: Path) -> dict:
    """config.json as written by `write_config`."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise UserError(f"run dir {run_dir} does not exist: train one with deepq train --out DIR")
    if not path.exists():
        raise UserError(f"{run_dir} is not a deepq run dir (no {CONFIG_FILE})")
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc["config"], dict):
            raise TypeError
        return doc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise UserError(f"{path} is corrupt: restore it or retrain the run") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def read_config(run_dir: Path) -> Config:
    """The run's config; a config.json from before `Config.preset` gives its preset at the
    top level only."""
    path = Path(run_dir) / CONFIG_FILE
    doc = read_doc(run_dir)
    try:
        return Config.from_dict({"preset": doc.get("preset"), **doc["config"]})
    except UserError as exc:
        raise UserError(f"{path}: {exc}; fix the file or retrain the run") from None
    except TypeError:
        raise UserError(f"{path} is corrupt: restore it or retrain the run") from None


def write_config(run_dir: Path, cfg: Config, backend: str) -> None:
    """config.json: the config, and the preset it was built from (`cfg.preset`) with its
    citation."""
    preset = cfg.preset
    doc = {
        "deepq_version": __version__,
        "preset": preset,
        "citation": PRESETS[preset].citation if preset in PRESETS else None,
        "backend": backend,
        "config": cfg.to_dict(),
    }
    checkpoint.atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
