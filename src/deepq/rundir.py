"""The run directory: its files, a fresh one, and the config it was trained with.

    RUN/config.json        the resolved config, the preset it came from and its citation
    RUN/checkpoints/       step_<clock>.msgpack, the newest few (checkpoint.py)
    RUN/metrics.csv, tb/   one row per episode; TensorBoard (report.py)
    RUN/summary.json       how the run went: steps, seeds, timings, selection scores
    RUN/eval.json, curves.png, episode.gif, qtrace.csv, heldout_states.npy
    RUN/policy.msgpack     seed 0's model file (policy.py)
    RUN/.deepq.lock        held by the process training the run (RunLock)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

from deepq import checkpoint
from deepq._version import __version__
from deepq.atomic import atomic_write_text
from deepq.config import Config
from deepq.errors import UserError
from deepq.presets import PRESETS

CONFIG_FILE = "config.json"
EVAL_FILE = "eval.json"
SUMMARY_FILE = "summary.json"
CURVES_FILE = "curves.png"
GIF_FILE = "episode.gif"
METRICS_FILE = "metrics.csv"
LOCK_FILE = ".deepq.lock"  # RunLock's; not in OURS: --force keeps it
OURS = (CONFIG_FILE, EVAL_FILE, SUMMARY_FILE, CURVES_FILE, GIF_FILE, METRICS_FILE, "tb",
        checkpoint.CHECKPOINT_DIR, "qtrace.csv", "heldout_states.npy", "policy.msgpack")


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


def check_output_file(out: Path) -> None:
    """A file deepq is asked to write (`--out` of record, plot, compare) can be written:
    its folder exists or is created."""
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror} ({Path(out).parent} cannot be a "
                        "folder); pick another --out") from None
    if Path(out).is_dir():
        raise UserError(f"--out {out} is a directory: name a file") from None


def check_new_run(out: Path, force: bool) -> None:
    """Refuse an `--out` a new run cannot use; changes nothing but creating `out` when it is
    absent. An existing non-empty dir needs --force and must be a run dir."""
    try:
        exists = out.exists()  # raises for a path the OS cannot look up (a name over 255 bytes)
    except OSError as exc:
        raise cannot_write(out, exc) from None
    if exists and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: pick another --out")
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()):
        if not force:
            raise UserError(
                f"run dir {out} already exists: pass --resume {out} to continue it, or --force "
                "to overwrite it"
            )
        if not (out / CONFIG_FILE).exists():
            raise UserError(f"--force would overwrite {out}, which is not a deepq run dir "
                            "(no config.json): pick another --out")
    check_writable(out)


def clear_run(out: Path) -> None:
    """Remove deepq's own files from `out` (a run dir --force starts over)."""
    for name in OURS:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def prepare_new_run(out: Path, force: bool) -> None:
    """A fresh run dir. An existing non-empty one needs --force (deepq files only are removed)."""
    check_new_run(out, force)
    clear_run(out)


class RunLock:
    """One trainer per dir: an exclusive OS file lock (flock) on DIR/.deepq.lock, held while
    the `with` block runs. The OS drops it when the process ends, a SIGKILL included, so a
    lock is never left stale; readers (eval, plot, compare) do not take it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise cannot_write(self.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise UserError(f"{self.path} is in use by another deepq train{pid}: wait for it "
                            "to finish or stop it (deepq eval, plot and compare may read the "
                            "run meanwhile)") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # the pid is only for the message above
            pass
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


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
    atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
