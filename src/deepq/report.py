"""Run artifacts: per-episode metrics (CSV + TensorBoard), curves.png, GIF/MP4 of an episode."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from deepq.atomic import atomic_savefig, atomic_write_text
from deepq.errors import UserError

METRICS_FILE = "metrics.csv"
TRACE_FILE = "qtrace.csv"  # Q traces (qtrace.py): the held-out states' average max-Q per seed
TRACE_COLUMNS = ("seed", "env_step", "avg_max_q")
COLUMNS = ("seed", "env_step", "episode", "return", "length", "epsilon", "loss", "q_mean",
           "steps_per_sec")


def episode_rows(logs: dict[str, np.ndarray], seeds: list[int], start_iteration: int,
                 num_envs: int, episodes_so_far: list[int], steps_per_sec: float) -> list[dict]:
    """One row per finished episode in a chunk's step logs (see JittedDriver.chunks)."""
    rows = []
    for s, seed in enumerate(seeds):
        ks, es = np.nonzero(logs["done"][s])
        for k, e in zip(ks, es):
            episodes_so_far[s] += 1
            rows.append({
                "seed": seed,
                "env_step": (start_iteration + int(k) + 1) * num_envs,
                "episode": episodes_so_far[s],
                "return": float(logs["episode_return"][s, k, e]),
                "length": int(logs["episode_length"][s, k, e]),
                "epsilon": float(logs["epsilon"][s, k]),
                "loss": float(logs["loss"][s, k]),
                "q_mean": float(logs["q_mean"][s, k]),
                "steps_per_sec": steps_per_sec,
            })
    rows.sort(key=lambda r: (r["env_step"], r["seed"]))
    return rows


class MetricsWriter:
    """Appends every episode to metrics.csv; TensorBoard gets per-seed means over windows of
    `window` units of the run's clock (100 points a run), since one event per episode costs
    seconds. The clock is `clock_column`: env steps, or episodes for REINFORCE.

    TensorBoard also gets each seed's running reward, Karpathy's exponential average of
    episode returns (`running_reward`), at the end of every window.
    """

    def __init__(self, run_dir: Path, seeds: list[int], window: int,
                 resume_at: int | None = None, clock_column: str = "env_step"):
        self.path = Path(run_dir) / METRICS_FILE
        self.clock = clock_column
        self._running: dict[int, float | None] = {seed: None for seed in seeds}
        if resume_at is not None:
            truncate_metrics(self.path, resume_at, clock_column)
            if self.path.exists():  # the running rewards continue from the kept rows
                kept = read_metrics(Path(run_dir))
                for seed in seeds:
                    returns = kept["return"][kept["seed"] == seed]
                    if len(returns):
                        self._running[seed] = float(running_reward(returns)[-1])
        new = not self.path.exists()
        self._file = open(self.path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS, lineterminator="\n")
        if new:
            self._csv.writeheader()
        from tensorboardX import SummaryWriter

        purge = None if resume_at is None else resume_at + 1
        self._tb = {
            seed: SummaryWriter(str(Path(run_dir) / "tb" / f"seed_{seed}"), purge_step=purge,
                                flush_secs=30)
            for seed in seeds
        }
        self.window = max(1, window)
        self._pending: dict[int, list[dict]] = {seed: [] for seed in seeds}

    def write(self, rows: list[dict], done: int) -> None:
        """Log `rows`; TensorBoard windows ending at or before `done` (on the clock) are
        flushed."""
        for row in rows:
            self._csv.writerow({k: _fmt(row[k]) for k in COLUMNS})
            self._pending[row["seed"]].append(row)
            running = next_running_reward(self._running[row["seed"]], row["return"])
            self._running[row["seed"]] = row["running_reward"] = running
        self._file.flush()
        for seed, pending in self._pending.items():
            while pending:
                end = _window_end(pending[0][self.clock], self.window)
                if end > done:
                    break
                n = sum(1 for r in pending if r[self.clock] <= end)
                self._summarize(self._tb[seed], pending[:n], end)
                del pending[:n]

    @staticmethod
    def _summarize(tb, rows: list[dict], step: int) -> None:
        tb.add_scalar("episode/return", float(np.mean([r["return"] for r in rows])), step)
        tb.add_scalar("episode/length", float(np.mean([r["length"] for r in rows])), step)
        tb.add_scalar("episode/running_reward", rows[-1]["running_reward"], step)
        tb.add_scalar("train/epsilon", rows[-1]["epsilon"], step)
        if math.isfinite(rows[-1]["loss"]):
            tb.add_scalar("train/loss", rows[-1]["loss"], step)
        if math.isfinite(rows[-1]["q_mean"]):
            tb.add_scalar("train/q_mean", rows[-1]["q_mean"], step)

    def add_scalars(self, tag: str, values, step: int) -> None:
        """One TensorBoard scalar per seed (values in the order of `seeds`)."""
        for tb, value in zip(self._tb.values(), values):
            tb.add_scalar(tag, float(value), step)

    def close(self) -> None:
        for seed, pending in self._pending.items():
            if pending:
                self._summarize(self._tb[seed], pending, pending[-1][self.clock])
        self._file.close()
        for tb in self._tb.values():
            tb.close()


RUNNING_DECAY = 0.99  # Karpathy's pg-pong.py: running_reward * 0.99 + reward_sum * 0.01


def next_running_reward(last: float | None, episode_return: float,
                        decay: float = RUNNING_DECAY) -> float:
    """Karpathy's running reward after one more episode: its return if it is the first,
    else decay * last + (1 - decay) * return."""
    return episode_return if last is None else decay * last + (1 - decay) * episode_return


def running_reward(returns: np.ndarray, decay: float = RUNNING_DECAY) -> np.ndarray:
    """The running reward after each episode (`next_running_reward` along `returns`)."""
    out = np.empty(len(returns), np.float64)
    value = None
    for i, x in enumerate(np.asarray(returns, np.float64)):
        value = out[i] = next_running_reward(value, x, decay)
    return out


def _window_end(step: int, window: int) -> int:
    return -(-step // window) * window


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def log_scalars(run_dir: Path, seeds: list[int], tag: str, values, step: int) -> None:
    """One TensorBoard scalar per seed, outside a MetricsWriter (e.g. the final eval)."""
    from tensorboardX import SummaryWriter

    for seed, value in zip(seeds, values):
        with SummaryWriter(str(Path(run_dir) / "tb" / f"seed_{seed}")) as tb:
            tb.add_scalar(tag, float(value), step)


def truncate_metrics(path: Path, last: int, column: str = "env_step") -> None:
    """Drop rows logged after the checkpoint we resume from, at `column` = `last` (they
    will be logged again)."""

    if not path.exists():
        return
    lines = path.read_text().splitlines()  # LF or CRLF: written back with LF
    if not lines:
        return
    col = lines[0].split(",").index(column)
    kept = [lines[0]] + [ln for ln in lines[1:] if float(ln.split(",")[col]) <= last]
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def read_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        raise UserError(f"{path} does not exist: is {run_dir} a deepq run directory?")
    return read_columns(path, COLUMNS)


def read_columns(path: Path, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A CSV file's `columns` as float arrays."""
    def damaged(what: str) -> UserError:
        return UserError(f"{path} is damaged ({what}): restore it, or delete it to drop the "
                         "curve it holds")

    try:
        text = Path(path).read_text()
        if not text.endswith("\n"):  # a reader beside a training run: its row is half written
            text = text[: text.rfind("\n") + 1]
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error):
        raise damaged("not CSV text") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise damaged(f"no {missing[0]} column")
    try:
        return {c: np.array([float(r[c]) for r in rows]) for c in columns}
    except (ValueError, TypeError):  # TypeError: a short row's missing field is None
        raise damaged("a row that is not numbers") from None


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (fewer at the start)."""
    c = np.cumsum(np.insert(np.asarray(x, np.float64), 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def _algo(run_dir: Path) -> str:
    import json

    try:
        return json.loads((Path(run_dir) / "config.json").read_text())["config"]["algo"]
    except (OSError, ValueError, KeyError, TypeError):
        return "dqn"


def plot_runs(run_dirs: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    """curves.png against env steps: episode returns with rolling 20/50 means (REINFORCE:
    with Karpathy's running reward), the loss, epsilon (episode lengths when no run
    explores with epsilon) and, when the runs have one, the Q-value trace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    traces = [read_trace(d) for d in run_dirs]
    metrics = [read_metrics(d) for d in run_dirs]
    policy_gradient = [_algo(d) == "reinforce" for d in run_dirs]
    show_eps = any(np.any(m["epsilon"] > 0) for m in metrics)
    panels = 4 if any(t is not None for t in traces) else 3
    fig, axes = plt.subplots(panels, 1, figsize=(9, 3.3 * panels), sharex=True)
    ax_ret, ax_loss, ax_third = axes[:3]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = labels or [Path(d).name for d in run_dirs]
    negative_loss = False
    for i, (m, label, trace, pg) in enumerate(zip(metrics, labels, traces, policy_gradient)):
        color = colors[i % len(colors)]
        if trace is not None:
            for j, seed in enumerate(np.unique(trace["seed"])):
                sel = trace["seed"] == seed
                axes[3].plot(trace["env_step"][sel], trace["avg_max_q"][sel], color=color,
                             lw=1.2, marker=".", ms=3, label=label if j == 0 else None)
        seeds = np.unique(m["seed"])
        for j, seed in enumerate(seeds):
            sel = m["seed"] == seed
            step, ret = m["env_step"][sel], m["return"][sel]
            first = j == 0
            ax_ret.plot(step, ret, color=color, alpha=0.15, lw=0.8)
            if pg:  # Karpathy's curve: the running reward, an EMA 0.99 of the returns
                ax_ret.plot(step, running_reward(ret), color=color, lw=1.8,
                            label=f"{label} (running reward)" if first else None)
            else:
                ax_ret.plot(step, rolling_mean(ret, 20), color=color, alpha=0.6, lw=1,
                            ls="--", label=f"{label} (rolling 20)" if first else None)
                ax_ret.plot(step, rolling_mean(ret, 50), color=color, lw=1.8,
                            label=f"{label} (rolling 50)" if first else None)
            loss = m["loss"][sel]
            ok = np.isfinite(loss)
            negative_loss |= bool(np.any(loss[ok] <= 0))
            ax_loss.plot(step[ok], rolling_mean(loss[ok], 20), color=color, lw=1,
                         label=label if first else None)
            third = m["epsilon"][sel] if show_eps else rolling_mean(m["length"][sel], 20)
            ax_third.plot(step, third, color=color, lw=1, label=label if first else None)
    ax_ret.set_ylabel("episode return")
    ax_ret.set_title(f"{', '.join(labels)}: light = per episode, {len(seeds)} seed(s)")
    ax_ret.legend(loc="best", fontsize=8)
    names = {"TD" if not pg else "policy" for pg in policy_gradient}
    ax_loss.set_ylabel(f"{' / '.join(sorted(names))} loss (rolling 20)")
    ax_loss.set_yscale("linear" if negative_loss else "log")
    ax_third.set_ylabel("epsilon" if show_eps else "episode length (rolling 20)")
    if panels == 4:
        axes[3].set_ylabel("average max Q,\nheld-out states")
    axes[-1].set_xlabel("environment steps (per seed)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    atomic_savefig(fig, out, dpi=110)
    plt.close(fig)
    return out


def write_video(frames: list[np.ndarray], out: Path, fps: int = 50, shrink: int = 1) -> Path:
    """Write frames as .gif or .mp4 (by suffix), keeping every `shrink`-th pixel."""
    frames = [f[::shrink, ::shrink] for f in frames]
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".gif":
        _write_gif(frames, out, fps)
    elif suffix == ".mp4":
        import imageio.v3 as iio

        tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")  # ffmpeg reads the suffix
        iio.imwrite(tmp, np.stack(frames), extension=".mp4", fps=fps, codec="libx264",
                    macro_block_size=1)
        tmp.replace(out)
    else:
        raise UserError(f"--out {out}: the video must end in .gif or .mp4")
    return out


def _write_gif(frames: list[np.ndarray], out: Path, fps: int) -> None:
    """One 256-colour palette for the whole clip, taken from a few frames spread over it:
    6x faster than a palette per frame, and the colours do not flicker."""
    from PIL import Image

    picks = [frames[i] for i in np.linspace(0, len(frames) - 1, min(8, len(frames))).astype(int)]
    palette = Image.fromarray(np.concatenate(picks, axis=0)).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in frames]
    tmp = out.with_name(out.name + ".tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0)
    tmp.replace(out)


# One colour per MinAtar observation channel (up to 10 in Seaquest), on black.
PLANE_COLOURS = np.array([
    [255, 215, 0], [220, 60, 60], [60, 160, 255], [80, 200, 120], [250, 250, 250],
    [200, 100, 255], [255, 140, 0], [0, 200, 200], [180, 180, 80], [255, 105, 180],
], np.uint8)


def draw_planes(obs: np.ndarray, scale: int = 24) -> np.ndarray:
    """An RGB image [H*scale, W*scale, 3] of a [H, W, C] stack of boolean planes: each cell
    takes the colour of its last set channel."""
    h, w, c = obs.shape
    image = np.zeros((h, w, 3), np.uint8)
    for ch in range(c):
        image[obs[..., ch] > 0] = PLANE_COLOURS[ch % len(PLANE_COLOURS)]
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def start_plot_process(run_dir: Path, out: Path):
    """Plot `run_dir`'s curves to `out` in a child process (matplotlib's import and drawing
    take ~0.8 s, which the parent spends on evaluation and the GIF meanwhile); `.wait()`
    the returned Popen."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "deepq.report", str(run_dir), str(out),
                             str(os.getpid())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _end_with_parent(parent: int) -> None:
    """Linux: the kernel sends this process SIGKILL when its parent dies (prctl
    PR_SET_PDEATHSIG), so a killed trainer leaves no plotter writing into its run dir."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent check below still holds
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def read_trace(run_dir: Path) -> dict[str, np.ndarray] | None:
    """qtrace.csv's columns, or None when the run has no Q trace."""
    path = Path(run_dir) / TRACE_FILE
    return read_columns(path, TRACE_COLUMNS) if path.exists() else None


if __name__ == "__main__":
    import sys

    _end_with_parent(int(sys.argv[3]))
    plot_runs([Path(sys.argv[1])], Path(sys.argv[2]))
