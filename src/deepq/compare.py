"""`deepq compare`: runs side by side, with the uncertainty of their seeds (Agarwal et al.
2021, "Deep RL at the Edge of the Statistical Precipice", NeurIPS; the `rliable` library).

Each run directory is one method on one env with N seeds. Per seed it gives
  - a final score: the mean of its evaluation episodes (eval.json), or, for a run that was
    not evaluated, the mean return of its last 100 training episodes;
  - a sample-efficiency curve: the mean return of the training episodes that ended in each
    of `points` equal windows of env steps (a window without an episode repeats the value
    before it; windows before the first episode take that episode's return).
Per method and env: the IQM (mean of the middle 50% of seeds) and the mean of the final
scores, and the IQM along the curve, each with a 95% stratified-bootstrap confidence interval
(runs resampled within each env, percentile method).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepq.atomic import atomic_savefig, atomic_write_text
from deepq.errors import UserError
from deepq.report import read_metrics
from deepq.rundir import EVAL_FILE, read_config

TABLE_FILE = "compare.md"
JSON_FILE = "compare.json"
PLOT_FILE = "compare.png"
LAST_EPISODES = 100


@dataclass
class Scores:
    """One method on one env: every seed's final score and curve."""

    label: str
    env_id: str
    seeds: list[int]
    steps: int  # the run's budget per seed, in `unit`
    final: np.ndarray  # [S]
    final_source: str
    curve_steps: np.ndarray  # [P], in `unit`
    curve: np.ndarray  # [S, P]
    unit: str = "steps"  # env steps; "episodes" for REINFORCE, whose budget is episodes


def run_scores(run_dir: Path, label: str | None = None, points: int = 20) -> Scores:
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    metrics = read_metrics(run_dir)
    seeds = cfg.seeds
    for seed in seeds:
        if not np.any(metrics["seed"] == seed):
            raise UserError(f"{run_dir}: seed {seed} has no finished episode yet; train it "
                            "longer before comparing")
    # REINFORCE's budget is episodes, and its seeds' env steps differ: its curves count
    # episodes, so that runs of one method can pool their seeds.
    unit, column = ("episodes", "episode") if cfg.algo == "reinforce" else ("steps", "env_step")
    horizon = cfg.total_episodes if cfg.algo == "reinforce" else cfg.total_steps
    grid = np.linspace(horizon / points, horizon, points)
    curve = np.stack([_windowed_means(metrics, seed, grid, column) for seed in seeds])
    eval_path = run_dir / EVAL_FILE
    if eval_path.exists():
        doc = json.loads(eval_path.read_text())
        final = np.asarray(doc["per_seed_mean"], np.float64)
        source = f"eval: {doc['episodes']} episodes, epsilon {doc['epsilon']:g}"
    else:
        final = np.array([metrics["return"][metrics["seed"] == s][-LAST_EPISODES:].mean()
                          for s in seeds])
        source = f"last {LAST_EPISODES} training episodes"
    return Scores(label or run_dir.name, cfg.env_id, seeds, horizon, final, source, grid, curve,
                  unit)


def _windowed_means(metrics: dict[str, np.ndarray], seed: int, grid: np.ndarray,
                    column: str = "env_step") -> np.ndarray:
    sel = metrics["seed"] == seed
    steps, returns = metrics[column][sel], metrics["return"][sel]
    out = np.empty(len(grid))
    lo = 0.0
    previous = returns[0]  # before any window has an episode: the first episode's return
    for i, hi in enumerate(grid):
        inside = (steps > lo) & (steps <= hi)
        previous = returns[inside].mean() if inside.any() else previous
        out[i] = previous
        lo = hi
    return out


def merge(scores: list[Scores]) -> list[Scores]:
    """Runs with the same label and env are one method's seeds (e.g. seeds 0-4 and 5-9
    trained apart); a seed may only appear once."""
    merged: dict[tuple[str, str], Scores] = {}
    for s in scores:
        key = (s.label, s.env_id)
        if key not in merged:
            merged[key] = s
            continue
        m = merged[key]
        if set(m.seeds) & set(s.seeds) or (m.steps, m.unit) != (s.steps, s.unit) \
                or m.final_source != s.final_source:
            raise UserError(f"two runs are both labelled {s.label!r} on {s.env_id} but share "
                            "seeds or differ in steps or scoring: name them apart with --labels")
        merged[key] = Scores(m.label, m.env_id, m.seeds + s.seeds, m.steps,
                             np.concatenate([m.final, s.final]), m.final_source, m.curve_steps,
                             np.concatenate([m.curve, s.curve]), m.unit)
    return list(merged.values())


def interval_estimates(score_dict: dict[str, np.ndarray], reps: int, seed: int = 0):
    """IQM and mean of each method's scores [runs, tasks] with 95% stratified-bootstrap CIs:
    ({label: [iqm, mean]}, {label: [[iqm_lo, mean_lo], [iqm_hi, mean_hi]]})."""
    from rliable import metrics

    aggregate = lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])
    return _bootstrap(score_dict, aggregate, reps, seed)


def curve_estimates(curve_dict: dict[str, np.ndarray], reps: int, seed: int = 0):
    """IQM at each curve point of [runs, tasks, points] scores, with 95% CIs."""
    import scipy.stats

    # rliable's aggregate_iqm (a 25% trimmed mean over runs and tasks) at every point in
    # one call: 20x fewer calls per bootstrap resample than a loop over the points.
    iqm_along = lambda x: scipy.stats.trim_mean(x.reshape(-1, x.shape[-1]),
                                                proportiontocut=0.25, axis=0)
    return _bootstrap(curve_dict, iqm_along, reps, seed)


def _bootstrap(score_dict: dict[str, np.ndarray], aggregate, reps: int, seed: int):
    import warnings

    from rliable import library as rly

    # rliable's stratified bootstrap draws its resamples with np.random.choice, numpy's global
    # generator, whatever `random_state` says: seed that generator for the call (and put
    # its state back after), so that the same runs always give the same intervals.
    outside = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # arch deprecates the RandomState rliable passes
            warnings.simplefilter("ignore", FutureWarning)
            return rly.get_interval_estimates(score_dict, aggregate, reps=reps,
                                              random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(outside)


def compare(run_dirs: list[Path], out_dir: Path, labels: list[str] | None = None,
            reps: int = 2000, points: int = 20, seed: int = 0) -> dict:
    """Write compare.md, compare.json and compare.png for `run_dirs` into `out_dir`."""
    if labels is not None and len(labels) != len(run_dirs):
        raise UserError(f"--labels gives {len(labels)} names for {len(run_dirs)} runs")
    if reps < 100:
        raise UserError(f"--reps {reps} is too few bootstrap samples: use at least 100")
    if points < 2:
        raise UserError(f"--points {points}: a curve needs at least 2 points")
    scores = merge([run_scores(d, labels[i] if labels else None, points)
                    for i, d in enumerate(run_dirs)])
    result = {"reps": reps, "confidence": 0.95, "envs": {}, "warnings": warnings(scores)}
    for env_id in dict.fromkeys(s.env_id for s in scores):
        group = [s for s in scores if s.env_id == env_id]
        if len({s.unit for s in group}) > 1:
            raise UserError(f"{env_id}: REINFORCE runs count episodes and DQN runs env steps, "
                            "so their curves share no axis: compare them separately")
        final_pe, final_ci = interval_estimates({s.label: s.final[:, None] for s in group},
                                                reps, seed)
        curve_pe, curve_ci = curve_estimates({s.label: s.curve[:, None, :] for s in group},
                                             reps, seed)
        result["envs"][env_id] = [{
            "label": s.label,
            "seeds": s.seeds,
            f"{s.unit}_per_seed": s.steps,
            "unit": s.unit,
            "final_source": s.final_source,
            "final_per_seed": s.final.tolist(),
            "iqm": float(final_pe[s.label][0]),
            "iqm_ci": _ci(final_ci[s.label], 0, len(s.seeds)),
            "mean": float(final_pe[s.label][1]),
            "mean_ci": _ci(final_ci[s.label], 1, len(s.seeds)),
            "curve_steps": s.curve_steps.tolist(),
            "curve_iqm": curve_pe[s.label].tolist(),
            "curve_iqm_ci": curve_ci[s.label].tolist(),
        } for s in group]
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to --out {out_dir}: {exc.strerror}; pick another "
                        "--out") from None

    atomic_write_text(out_dir / JSON_FILE, json.dumps(result, indent=2) + "\n")
    atomic_write_text(out_dir / TABLE_FILE, table(result))
    plot(result, out_dir / PLOT_FILE)
    return result


def _ci(ci, i: int, seeds: int) -> list[float] | None:
    """The i-th statistic's interval; None for one seed, where a bootstrap over seeds has
    nothing to resample."""
    return [float(ci[0][i]), float(ci[1][i])] if seeds > 1 else None


def warnings(scores: list) -> list[str]:
    """What makes the methods' numbers not like for like: several envs, or different
    budgets on one env."""
    found = []
    envs = list(dict.fromkeys(s.env_id for s in scores))
    if len(envs) > 1:
        found.append(f"the runs span {len(envs)} envs ({', '.join(envs)}): each is compared "
                     "on its own")
    for env_id in envs:
        group = [s for s in scores if s.env_id == env_id]
        if len({s.steps for s in group}) > 1:
            budgets = ", ".join(f"{s.label} {s.steps:,}" for s in group)
            found.append(f"{env_id}: the methods ran different budgets ({budgets} "
                         f"{group[0].unit} per seed): their final scores are not like for "
                         "like")
    return found


# pragma: no mutate start
# The rendering of the results above: left out of `make mutate`, which scores the statistics.


def table(result: dict) -> str:
    lines = [f"> warning: {w}" for w in result.get("warnings", [])]
    lines += [""] if lines else []
    for env_id, rows in result["envs"].items():
        lines += [f"### {env_id}", "",
                  "| method | seeds | budget per seed | final score from | IQM [95% CI] "
                  "| mean [95% CI] |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(
                f"| {r['label']} | {len(r['seeds'])} | {r[r['unit'] + '_per_seed']:,} "
                f"{'env steps' if r['unit'] == 'steps' else 'episodes'} | "
                f"{r['final_source']} | {_with_ci(r['iqm'], r['iqm_ci'])} | "
                f"{_with_ci(r['mean'], r['mean_ci'])} |")
        lines.append("")
    lines.append(f"95% CIs: stratified bootstrap over seeds, {result['reps']:,} resamples "
                 "(rliable, percentile method).")
    return "\n".join(lines) + "\n"


def _with_ci(value: float, ci: list[float] | None) -> str:
    if ci is None:
        return f"{value:.{1 if abs(value) >= 10 else 2}f} (one seed: no CI)"
    digits = 1 if max(abs(value), *map(abs, ci)) >= 10 else 2
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def plot(result: dict, out: Path) -> Path:
    """Per env: the final scores' IQM and mean with their CIs, and the IQM curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(result["envs"].items())
    fig, axes = plt.subplots(len(envs), 2, figsize=(12, 4.2 * len(envs)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.4]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (env_id, rows), (ax_final, ax_curve) in zip(envs, axes):
        for i, r in enumerate(rows):
            color = colors[i % len(colors)]
            for j, stat in enumerate(("iqm", "mean")):
                y = i + (0.15 if j == 0 else -0.15)
                if r[f"{stat}_ci"] is not None:
                    lo, hi = r[f"{stat}_ci"]
                    ax_final.plot([lo, hi], [y, y], color=color, lw=6 if j == 0 else 3,
                                  alpha=0.6 if j == 0 else 0.35, solid_capstyle="butt")
                ax_final.plot([r[stat]], [y], "|", color="black", ms=12)
            steps = np.asarray(r["curve_steps"])
            lo, hi = np.asarray(r["curve_iqm_ci"])
            ax_curve.plot(steps, r["curve_iqm"], color=color, lw=1.8, label=r["label"])
            ax_curve.fill_between(steps, lo, hi, color=color, alpha=0.2)
        ax_final.set_yticks(range(len(rows)), [r["label"] for r in rows])
        ax_final.set_title(f"{env_id}: final score, IQM (thick) and mean (thin), 95% CI",
                           fontsize=9)
        ax_final.grid(axis="x", alpha=0.3)
        ax_curve.set_title(f"{env_id}: training return, IQM over seeds, 95% CI", fontsize=9)
        ax_curve.set_xlabel("environment steps (per seed)" if rows[0]["unit"] == "steps"
                            else "episodes (per seed)")
        ax_curve.legend(fontsize=8)
        ax_curve.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, out, dpi=110)
    plt.close(fig)
    return out
# pragma: no mutate end
