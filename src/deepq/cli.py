"""The `deepq` command line: train, eval, record, plot, compare, presets, envs.

Every failure is one line on stderr and an exit code: 2 bad input, 3 a diverged run, 74 a
failed write (a full disk), 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from deepq import grid
from deepq._version import __version__
from deepq.agents import ALGORITHMS, validated
from deepq.compare import PLOT_FILE, TABLE_FILE, compare
from deepq.config import (
    CHOICES,
    Config,
    field_docs,
    parse_overrides,
    parse_value,
    read_config_file,
)
from deepq.distributed import SEARCH_FILE, RayExecutor, SearchDim, import_ray
from deepq.envs import GYMNAX_ENVS
from deepq.envs.atari import frame_shape, is_atari, overridden_defaults
from deepq.errors import (
    DivergedError,
    Interrupted,
    StorageError,
    UserError,
    raise_from_handler,
)
from deepq.frame_replay import memory_bytes
from deepq.jaxcache import use_compilation_cache
from deepq.presets import PRESETS, config_for
from deepq.report import plot_runs
from deepq.run import Run
from deepq.rundir import (
    CURVES_FILE,
    EVAL_FILE,
    GIF_FILE,
    SUMMARY_FILE,
    check_output_file,
    read_config,
)
from deepq.training import train

EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_IO = 74  # sysexits' EX_IOERR

# Flags of `train` that map onto Config fields under another name.
_RENAMED = {"seeds": "num_seeds"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        raise UserError(f"{message} (see `{self.prog} --help`)")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action):  # a default of None says nothing: leave it out
        return action.help if action.default is None else super()._get_help_string(action)


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _field_help(name: str, doc: str, resolved: Config, source: str) -> str:
    """A hyperparameter's help: its comment, its choices and the value this run uses."""
    value = getattr(resolved, name)
    origin = source if value != getattr(Config(), name) else "Config default"
    choices = f" Choices: {', '.join(CHOICES[name])}." if name in CHOICES else ""
    text = f"{doc}.{choices}" if doc and not doc.endswith(".") else f"{doc}{choices}"
    return f"{text} This run: {_shown(value)} ({origin}).".strip().replace("%", "%%")


def _help_config(argv: list[str]) -> tuple[Config, str]:
    """The config `deepq train ARGS --help` describes: the first --env / --preset / --algo
    resolved (with --config), as the run would; Config() where they do not resolve."""
    pre = argparse.ArgumentParser(add_help=False)
    for flag in ("--env", "--preset", "--algo", "--config"):
        pre.add_argument(flag)
    known, _ = pre.parse_known_args(argv)
    first = lambda text: text.split(",")[0].strip() or None if text else None  # noqa: E731
    try:
        env, preset, algo, fields = _with_file(
            read_config_file(known.config) if known.config else {}, first(known.env),
            first(known.preset), first(known.algo))
        cfg = config_for(env, preset, algo, **fields)
    except UserError as exc:
        return Config(), f"Config defaults: {exc}"
    return cfg, f"preset {cfg.preset}" if cfg.preset else "Config defaults"


def _add_train(sub, help_config: tuple[Config, str] | None) -> None:
    p = sub.add_parser(
        "train", help="train an agent", formatter_class=_Formatter,
        description="Train an agent. The config is the preset (default: the env's own), then "
                    "--set key=value pairs, then the dedicated flags.",
        epilog="presets:\n" + "\n".join(f"  {n}: {p.citation}" for n, p in PRESETS.items()),
    )
    p.add_argument("--env", default=None, help="env id, e.g. CartPole-v1 (default CartPole-v1)")
    p.add_argument("--algo", default=None, metavar="ALGO[,ALGO...]",
                   help=f"algorithm: {', '.join(ALGORITHMS)}; several, comma-separated, "
                        "train a grid")
    p.add_argument("--preset", default=None, metavar="NAME[,NAME...]",
                   help="named hyperparameters (default: the env's preset); several, "
                        "comma-separated, train a grid: one run dir each under --out, then "
                        "deepq compare over them")
    resolved, source = help_config or (Config(), "Config defaults")
    p.add_argument("--seed", type=int, default=None, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of seeds trained side by side (default 1)")
    p.add_argument("--total-steps", type=int, default=None,
                   help=f"env steps per seed (this run: {resolved.total_steps:,}, {source})")
    p.add_argument("--backend", default=None, choices=("auto", "gymnax", "gymnasium"),
                   help="auto: a JAX env when one exists; gymnasium forces the host driver")
    p.add_argument("--out", default=None, help="run directory (default runs/<env>-<algo>)")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue RUN from its last checkpoint (its own config)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run dir")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any hyperparameter, e.g. --set learning_rate=3e-4")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="hyperparameters from a YAML or JSON file (a run's config.json, a "
                        "search's best_config.json); the order is preset, file, --set, flags")
    p.add_argument("--track", nargs="?", const="deepq", default=None, metavar="PROJECT",
                   help="log the config, progress, results and curves to Weights & Biases "
                        "(project default deepq; pip install -e \".[track]\"; "
                        "WANDB_MODE=offline keeps it on disk)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-artifacts", action="store_true",
                   help="skip eval, curves.png and the GIF after training")
    ray = p.add_argument_group("Ray: grids and searches on a cluster (pip install -e "
                               "\".[ray]\")")
    ray.add_argument("--executor", default="local", choices=("local", "ray"),
                     help="local: members one after the other in this process; ray: each "
                          "member a Ray Tune trial")
    ray.add_argument("--address", default=None, help="the Ray cluster (default: start a "
                     "local Ray)")
    ray.add_argument("--cpus-per-trial", type=float, default=None, metavar="N",
                     help="CPUs per trial (default 1)")
    ray.add_argument("--gpus-per-trial", type=float, default=None, metavar="G",
                     help="GPUs per trial, fractions share a GPU (default 0)")
    ray.add_argument("--storage", default=None, metavar="PATH",
                     help="Tune's experiment files: a dir every node reaches or a cloud URI "
                          "(default OUT/tune)")
    ray.add_argument("--search", action="append", default=[], metavar="KEY=KIND:ARGS",
                     help="search KEY: loguniform:LO:HI, uniform:LO:HI, choice:A,B or "
                          "grid:A,B; weak trials stop early (ASHA)")
    ray.add_argument("--num-samples", type=int, default=None, metavar="N",
                     help="configs a search samples (default 8)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config as JSON and exit, writing nothing")
    hp = p.add_argument_group(
        "hyperparameters (each also settable with --set; 'this run' resolves the --env, "
        f"--preset and --algo given: {source})")
    taken = {"env_id", "algo", "preset", "seed", "num_seeds", "total_steps", "backend"}
    docs = field_docs() if help_config else {}
    for f in dataclasses.fields(Config):
        if f.name in taken:
            continue
        hp.add_argument(f"--{f.name.replace('_', '-')}", dest=f"hp_{f.name}", default=None,
                        metavar="V", help=_field_help(f.name, docs.get(f.name, ""), resolved,
                                                      source) if help_config else None)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a run on the reference Gymnasium env",
                       formatter_class=_Formatter)
    p.add_argument("run", help="run directory")
    p.add_argument("--episodes", type=int, default=None, help="episodes per seed (default: "
                   "the run's eval_episodes)")
    p.add_argument("--epsilon", type=float, default=None, help="exploration during eval "
                   "(default: the run's eval_epsilon)")
    p.add_argument("--env", default=None, help="evaluate on another env id")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_record(sub) -> None:
    p = sub.add_parser("record", help="render one greedy episode to a GIF or MP4",
                       formatter_class=_Formatter)
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, help="output file, .gif or .mp4")
    p.add_argument("--seed-index", type=int, default=0, help="which seed of the run")
    p.add_argument("--fps", type=int, default=50, help="frames per second")
    p.add_argument("--max-steps", type=int, default=10_000, help="episode step cap")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write one seed's model file (params and network, "
                       "no training state)", formatter_class=_Formatter)
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, help="model file, e.g. policy.msgpack; "
                   "deepq.load_policy(FILE).predict(obs) plays it")
    p.add_argument("--seed-index", type=int, default=0, help="which seed of the run")


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="learning curves of one or more runs",
                       formatter_class=_Formatter)
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", default=None, help="PNG (default: RUN/curves.png for one run, "
                   "else compare.png)")


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare runs: IQM and mean with 95%% bootstrap CIs, curves",
        formatter_class=_Formatter,
        description="Each run dir is one method with its seeds (a grid dir stands for all "
                    "its members; runs with the same name on the same env pool their seeds). "
                    "Writes compare.md, compare.json and compare.png: the IQM and mean of the "
                    "final scores and the IQM learning curves, with 95% stratified-bootstrap "
                    "CIs (Agarwal et al. 2021, rliable).")
    p.add_argument("runs", nargs="+", help="run or grid directories")
    p.add_argument("--out", default=None,
                   help="output dir (default: the grid dir when given one, else compare/)")
    p.add_argument("--labels", default=None, help="comma-separated names, one per run "
                   "(default: the run dirs' names)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--points", type=int, default=20, help="points along each curve")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; with --help among `argv`, train's hyperparameters are described
    with the values the run would use."""
    argv = sys.argv[1:] if argv is None else argv
    help_config = _help_config(argv) if {"-h", "--help"} & set(argv) else None
    parser = _Parser(prog="deepq", description="Deep Q-learning on Gymnasium and gymnax envs.")
    parser.add_argument("--version", action="version", version=f"deepq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub, help_config)
    _add_eval(sub)
    _add_record(sub)
    _add_export(sub)
    _add_plot(sub)
    _add_compare(sub)
    p = sub.add_parser("presets", help="list presets with their citations, or one preset's "
                       "values")
    p.add_argument("name", nargs="?", default=None, help="a preset: print every value it sets")
    sub.add_parser("envs", help="list env ids with a JAX implementation")
    return parser


def _listed(text: str | None, allowed: tuple[str, ...] | None, flag: str) -> list[str | None]:
    """`a,b` -> ["a", "b"], each checked against `allowed` (when given); None -> [None]."""
    if text is None:
        return [None]
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if allowed is not None and name not in allowed:
            raise UserError(f"unknown {flag} {name!r}: choose from {', '.join(allowed)}")
    if not names:
        raise UserError(f"--{flag} is empty: name at least one")
    return names


def config_from_args(args: argparse.Namespace, preset: str | None = None,
                     algo: str | None = None, env: str | None = None) -> Config:
    """The config of `args`, with `preset`, `algo` and `env` (one member of a grid) in
    place of the flags' values: the preset, then the --config file, then --set, then the
    dedicated flags."""
    env, preset, algo, changes = _with_file(args.file_fields, env, preset, algo)
    changes.update(_overrides(args))
    direct = {"seed": args.seed, "seeds": args.seeds, "total_steps": args.total_steps,
              "backend": args.backend}
    for flag, value in direct.items():
        if value is not None:
            changes[_RENAMED.get(flag, flag)] = value
    return config_for(env, preset, algo, **changes)


def _with_file(fields: dict, env: str | None, preset: str | None,
               algo: str | None) -> tuple[str | None, str | None, str | None, dict]:
    """A --config file's env, preset and algo where the flags name none, and its other
    fields."""
    rest = {k: v for k, v in fields.items() if k not in ("env_id", "preset", "algo")}
    return (env or fields.get("env_id"), preset or fields.get("preset"),
            algo or fields.get("algo"), rest)


def _overrides(args: argparse.Namespace) -> dict:
    """The hyperparameters `--set key=value` and the dedicated flags give, parsed."""
    changes = parse_overrides(args.set)
    for key, value in vars(args).items():
        if key.startswith("hp_") and value is not None:
            changes[key[3:]] = parse_value(key[3:], value)
    return changes


def _hyperparameters_given(args: argparse.Namespace) -> list[str]:
    given = [k[3:] for k, v in vars(args).items() if k.startswith("hp_") and v is not None]
    given += [p.split("=", 1)[0] for p in args.set]
    for flag in ("env", "algo", "preset", "seed", "seeds", "backend", "config"):
        if getattr(args, flag) is not None:
            given.append(flag)
    return given


def _executor(args: argparse.Namespace) -> RayExecutor | None:
    """The Ray executor the flags ask for, or None (members train in this process)."""
    ray_flags = {"--address": args.address, "--cpus-per-trial": args.cpus_per_trial,
                 "--gpus-per-trial": args.gpus_per_trial, "--storage": args.storage,
                 "--search": args.search or None, "--num-samples": args.num_samples}
    given = [flag for flag, value in ray_flags.items() if value is not None]
    if args.executor != "ray":
        if given:
            raise UserError(f"{given[0]} needs --executor ray")
        return None
    import_ray()  # the install line before anything else
    cpus, gpus = args.cpus_per_trial, args.gpus_per_trial
    return RayExecutor(address=args.address, cpus_per_trial=1.0 if cpus is None else cpus,
                       gpus_per_trial=0.0 if gpus is None else gpus, storage=args.storage,
                       progress=not args.quiet)


def cmd_train(args: argparse.Namespace) -> int:
    presets = _listed(args.preset, tuple(PRESETS), "preset")
    algos = _listed(args.algo, tuple(ALGORITHMS), "algo")
    envs = _listed(args.env, None, "env")
    args.file_fields = read_config_file(args.config) if args.config else {}
    executor = _executor(args)
    if args.resume and args.force:
        raise UserError("--resume continues the run and --force would start it over: drop "
                        "one of them")
    if args.resume and (grid.is_grid(args.resume) or is_search(args.resume)):
        return _resume_grid(args, executor)
    if args.search:
        if args.resume or len(presets) * len(algos) * len(envs) > 1:
            raise UserError("--search samples around one config: give one --preset, --algo "
                            "and --env (or drop --search to train a grid)")
        return _search(args, config_from_args(args, presets[0], algos[0], envs[0]), executor)
    if len(presets) * len(algos) * len(envs) > 1 or executor is not None:
        if args.resume:
            raise UserError("--resume RUN continues RUN's own config: drop --preset/--algo")
        members = []
        for env in envs:
            for preset in presets:
                for algo in algos:
                    cfg = config_from_args(args, preset, algo, env)
                    name = grid.member_name(cfg.preset, algo, len(algos) > 1)
                    if len(envs) > 1:
                        name = f"{name}-{cfg.env_id.replace('/', '_')}"
                    members.append((name, cfg.preset, cfg))
        if args.dry_run:
            return _print_json({"members": [{"name": n, "preset": p, "config": c.to_dict()}
                                            for n, p, c in members]})
        out = Path(args.out or f"runs/{members[0][2].env_id.replace('/', '_')}-grid")
        grid.start(members, out, args.force, **_grid_kwargs(args, executor))
        _print_comparison(out)
        return 0
    if args.resume:
        if args.out and Path(args.out) != Path(args.resume):
            raise UserError("--resume RUN continues RUN in place: drop --out")
        fixed = [k for k in _hyperparameters_given(args) if k != "total_episodes"]
        if fixed:
            raise UserError(f"--resume uses the run's own config; cannot change {fixed[0]} "
                            "(only --total-steps, or --total-episodes, may extend it)")
        extend = {"total_steps": args.total_steps,
                  "total_episodes": _overrides(args).get("total_episodes")}
        cfg = read_config(Path(args.resume))
        if args.dry_run:
            return _print_json(cfg.replace(**{k: v for k, v in extend.items() if v is not None})
                               .validated().to_dict())
        _print_start_notes(cfg)
        run = train(out=args.resume, resume=True, progress=not args.quiet,
                    artifacts=not args.no_artifacts, track=args.track, **extend)
    else:
        cfg = config_from_args(args, presets[0], algos[0], envs[0])
        if args.dry_run:
            return _print_json(cfg.to_dict())
        out = args.out or f"runs/{cfg.env_id.replace('/', '_')}-{cfg.algo}"
        _print_start_notes(cfg)
        run = train(cfg, out, force=args.force, progress=not args.quiet,
                    artifacts=not args.no_artifacts, track=args.track)
    _print_summary(run, artifacts=not args.no_artifacts)
    return 0


def _grid_kwargs(args: argparse.Namespace, executor: RayExecutor | None) -> dict:
    return dict(on_member=lambda r: _print_summary(r, not args.no_artifacts),
                progress=not args.quiet, artifacts=not args.no_artifacts, executor=executor,
                track=args.track)


def _print_json(doc: dict) -> int:
    """--dry-run: the resolved config(s) on stdout; nothing is written."""
    print(json.dumps(doc, indent=2))
    return 0


def _resume_grid(args: argparse.Namespace, executor: RayExecutor | None) -> int:
    """--resume GRID (or a search's dir): the unfinished members, on Ray or here."""
    fixed = _hyperparameters_given(args) + (["total_steps"] if args.total_steps else [])
    if args.out and Path(args.out) != Path(args.resume):
        raise UserError("--resume GRID continues GRID in place: drop --out")
    if fixed:
        raise UserError(f"--resume uses the grid's own configs; cannot change {fixed[0]}")
    if is_search(args.resume):
        if executor is None:
            raise UserError("a search resumes on Ray: add --executor ray")
        if args.dry_run:
            return _print_json(json.loads((Path(args.resume) / SEARCH_FILE).read_text()))
        _print_best(executor.resume_search(Path(args.resume), artifacts=not args.no_artifacts))
        return 0
    if args.dry_run:
        return _print_json({"members": grid.unfinished(Path(args.resume))})
    grid.run(args.resume, **_grid_kwargs(args, executor))
    _print_comparison(Path(args.resume))
    return 0


def _search(args: argparse.Namespace, base: Config, executor: RayExecutor) -> int:
    """--search: sample configs around `base` on Ray, print and write the best."""
    dims = [SearchDim.parse(text) for text in args.search]
    for dim in dims:  # each end of each range must make a valid config
        for value in dim.values:
            validated(base.replace(**{dim.key: value}).validated())
    if args.num_samples is not None and args.num_samples <= 0:
        raise UserError(f"--num-samples must be positive, got {args.num_samples}")
    if args.dry_run:
        return _print_json({"base": base.to_dict(), "space": [d.to_dict() for d in dims],
                            "num_samples": args.num_samples or 8})
    out = Path(args.out or f"runs/{base.env_id.replace('/', '_')}-search")
    _check_new_search(out, args.force)
    _print_best(executor.search(out, base, dims, args.num_samples or 8,
                                artifacts=not args.no_artifacts))
    return 0


def is_search(path: str | Path) -> bool:
    return (Path(path) / SEARCH_FILE).exists()


def _check_new_search(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: pick another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force or not is_search(out):
            raise UserError(f"{out} already exists: pass --resume {out} --executor ray to "
                            "finish a search there, or pick another --out"
                            + (" (--force starts a search over)" if is_search(out) else ""))
        for old in [*out.glob("trial_*"), out / "tune"]:  # the search's own files only
            shutil.rmtree(old, ignore_errors=True)


def _print_best(found: dict) -> None:
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in found["values"].items())
    print(f"best: {values} (score {found['score']:.1f}, the mean return of its last "
          f"episodes; run {found['run']})")
    print(f"its config: {found['path']} (deepq train --config {found['path']})")


def start_notes(cfg: Config) -> list[str]:
    """What a run on an ALE game says at start: the replay's memory bound, and which of the
    id's own defaults the config replaces."""
    notes = []
    if ALGORITHMS[cfg.algo].driver == "steps":  # PQN and REINFORCE keep no replay
        per_seed = memory_bytes(cfg.buffer_size, cfg.num_envs, frame_shape(cfg))
        notes.append(f"replay: {cfg.buffer_size:,} transitions x {cfg.num_seeds} seed(s), "
                     f"one {'x'.join(map(str, frame_shape(cfg)))} uint8 frame each: at most "
                     f"{per_seed * cfg.num_seeds / 1e9:.2f} GB")
    changed = overridden_defaults(cfg)
    if changed:
        notes.append(f"{cfg.env_id}: the config replaces the id's defaults: {', '.join(changed)}")
    return notes


def _print_start_notes(cfg: Config) -> None:
    if cfg.algo != "reinforce" and cfg.env_id not in GYMNAX_ENVS and is_atari(cfg.env_id):
        for line in start_notes(cfg):
            print(line, flush=True)


def _print_summary(run: Run, artifacts: bool) -> None:
    summary = json.loads((run.path / SUMMARY_FILE).read_text())
    steps = summary["steps_per_seed"]
    if summary["clock_unit"] == "episodes":  # whole episodes: the steps differ by seed
        each = f"{summary['clock']} episodes each ({sum(steps) / len(steps):,.0f} steps " \
               "on average)"
    else:
        each = f"{steps[0]} steps each"
    print(f"trained {run.config.env_id} x{run.config.num_seeds} seed(s), {each}, in "
          f"{summary['total_seconds']:.1f} s ({summary['train_seconds']:.1f} s training)")
    if artifacts:
        ev = json.loads((run.path / EVAL_FILE).read_text())
        print(f"eval over {ev['episodes']} episodes per seed: mean {ev['mean']:.1f} "
              f"± {ev['std']:.1f}  per seed {[round(x, 1) for x in ev['per_seed_mean']]}")
        if "random_mean" in ev:
            print(f"random agent, same protocol: {ev['random_mean']:.1f} ± {ev['random_std']:.1f}")
    print(f"run dir: {run.path}")
    for name in (CURVES_FILE, GIF_FILE, EVAL_FILE, "metrics.csv", "qtrace.csv", "tb"):
        if (run.path / name).exists():
            print(f"  {run.path / name}")


def _print_comparison(out: Path) -> None:
    for warning in json.loads((out / "compare.json").read_text()).get("warnings", []):
        print(f"deepq: warning: {warning}", file=sys.stderr)
    print((out / TABLE_FILE).read_text(), end="")
    for name in (TABLE_FILE, "compare.json", PLOT_FILE):
        print(f"  {out / name}")


def cmd_compare(args: argparse.Namespace) -> int:
    runs: list[Path] = []
    for path in map(Path, args.runs):
        if grid.is_grid(path):
            runs += [path / m["name"] for m in grid.read_members(path)]
        else:
            runs.append(path)
    default = Path(args.runs[0]) if len(args.runs) == 1 and grid.is_grid(args.runs[0]) \
        else Path("compare")
    out = Path(args.out) if args.out else default
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    compare(runs, out, labels=labels, reps=args.reps, points=args.points)
    _print_comparison(out)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    result = Run.load(args.run).evaluate(args.episodes, args.epsilon, args.env)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['env_id']}: mean {result['mean']:.2f} ± {result['std']:.2f} "
              f"(min {result['min']:.0f}, max {result['max']:.0f}) over {result['episodes']} "
              f"episodes x {len(result['seeds'])} seed(s)")
        for seed, m in zip(result["seeds"], result["per_seed_mean"]):
            print(f"  seed {seed}: {m:.2f}")
        if "random_mean" in result:
            print(f"  random agent: {result['random_mean']:.2f} ± {result['random_std']:.2f}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    if args.fps <= 0 or args.max_steps <= 0:
        raise UserError("--fps and --max-steps must be positive")
    out = Run.load(args.run).record(args.out, seed_index=args.seed_index, fps=args.fps,
                                    max_steps=args.max_steps)
    print(out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    print(Run.load(args.run).export(args.out, seed_index=args.seed_index))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    default = Path(args.runs[0]) / "curves.png" if len(args.runs) == 1 else Path("compare.png")
    out = Path(args.out) if args.out else default
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UserError(f"--out {out}: use a .png, .pdf or .svg file")
    check_output_file(out)
    print(plot_runs([Path(r) for r in args.runs], out))
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    if args.name is None:
        for name, preset in PRESETS.items():
            print(f"{name} ({preset.env_id}): {preset.citation}")
        return 0
    if args.name not in PRESETS:
        raise UserError(f"unknown preset {args.name!r}: choose from {', '.join(PRESETS)}")
    preset = PRESETS[args.name]
    cfg, defaults = preset.config(), Config()
    print(f"{args.name} ({preset.env_id}): {preset.citation}")
    print("values (* set by the preset; the rest are Config defaults):")
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        mark = "*" if value != getattr(defaults, f.name) else " "
        print(f" {mark} {f.name} = {_shown(value)}")
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    print("JAX (jitted driver): " + ", ".join(GYMNAX_ENVS))
    print("any Gymnasium id with a Discrete action space runs on the host driver")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "record": cmd_record, "export": cmd_export,
            "plot": cmd_plot, "compare": cmd_compare, "presets": cmd_presets, "envs": cmd_envs}


def main(argv: list[str] | None = None) -> int:
    use_compilation_cache()
    previous = _sigterm_as_interrupt()
    try:
        args = build_parser(argv).parse_args(argv)
        if getattr(args, "out", None) == "" or getattr(args, "resume", None) == "":
            raise UserError("an empty path was given (--out or --resume): name a path")
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"deepq: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DivergedError as exc:
        print(f"deepq: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except StorageError as exc:
        print(f"deepq: error: {exc}", file=sys.stderr)
        return EXIT_IO
    except BrokenPipeError:  # stdout closed early (deepq ... | head): nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python flushes it at exit)
        return 141
    except OSError as exc:  # a write outside training (eval.json, a video, a plot)
        where = f" {exc.filename}" if exc.filename else ""
        print(f"deepq: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_IO
    except Interrupted as exc:
        print(f"deepq: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:  # outside training: nothing of a run is at stake
        print("deepq: stopped by SIGINT", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt():
    """SIGTERM outside training stops as Ctrl-C does, with a line and exit 143, instead of
    the silent default; training installs its own handlers (training._StopSignals)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        raise_from_handler(Interrupted("stopped by SIGTERM", signum))

    return signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sys.exit(main())
