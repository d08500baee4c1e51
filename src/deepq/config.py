"""One dataclass holds every knob of a run, with its checks; presets.py names sets of values."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deepq.errors import UserError

# `algo` is checked against the algorithm table (agents/__init__.py), with each algorithm's
# own fields.
CHOICES: dict[str, tuple[str, ...]] = {
    "backend": ("auto", "gymnax", "gymnasium"),
    "network": ("mlp", "per_action", "minatar_cnn", "dqn2013_cnn", "nature_cnn"),
    "activation": ("relu", "tanh"),
    "weight_init": ("lecun_normal", "torch"),
    "loss": ("mse", "huber", "pseudo_huber"),
    "target_update": ("none", "hard", "polyak"),
    "optimizer": ("sgd", "rmsprop", "adam", "radam"),
    "lr_schedule": ("constant", "linear"),
    "exploration": ("epsilon_greedy", "boltzmann"),
    "epsilon_schedule": ("linear", "exponential", "multiplicative"),
    "policy": ("softmax", "bernoulli"),
    "standardize_returns": ("batch", "episode", "none"),
}


MAX_COUNT = 2**31 - 1  # the compiled loops count steps, updates and episodes in int32
MAY_BE_INFINITE = ("stop_at_return",)  # +inf: never stop early


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of a run. Steps are environment steps summed over the
    parallel envs of one seed; updates are gradient steps."""

    # --- experiment ---
    env_id: str = "CartPole-v1"
    algo: str = "dqn"
    preset: str | None = None  # the preset these values came from (presets.py), or None
    backend: str = "auto"  # auto: a JAX env when one exists, else Gymnasium
    seed: int = 0
    num_seeds: int = 1  # seeds seed, seed+1, ... trained side by side
    total_steps: int = 50_000
    num_envs: int = 1  # parallel envs per seed
    sticky_actions: float = 0.0  # probability that the env repeats the previous action
    full_action_set: bool = False  # MinAtar / ALE: all 6 / 18 actions, not the minimal set
    # --- Atari from pixels (ALE ids only; Mnih et al. 2013, 2015) ---
    frame_skip: int = 4  # emulator frames per agent step, the action repeated
    frame_resize: tuple[int, ...] = (84, 84)  # grayscale frames resized to height x width
    frame_crop_top: int = 0  # a taller resize keeps the square of rows from here (2013)
    frame_stack: int = 4  # frames per observation
    max_pool_frames: bool = True  # pixel max over the last two frames of each step (Nature)
    noop_max: int = 30  # up to this many no-op frames after every reset
    terminal_on_life_loss: bool = True  # a lost life ends the episode for training only
    max_episode_frames: int = 108_000  # training episodes truncated here (ALE v5's value)
    eval_max_frames: int = 18_000  # evaluation episodes capped here (5 minutes of play)
    eval_noop_max: int = 30  # no-op starts of evaluation episodes (Mnih et al. 2015)
    # --- network ---
    network: str = "mlp"  # mlp / per_action (hidden_sizes, activation) or a paper's CNN
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    # lecun_normal: flax's default (zero biases); torch: weights and biases U(+-1/sqrt(fan-in)),
    # the default of torch7 (DeepMind's DQN code) and PyTorch (MinAtar's examples/dqn.py)
    weight_init: str = "lecun_normal"
    layer_norm: bool = False  # LayerNorm before each hidden activation (PQN; Ba et al. 2016)
    # --- Rainbow's parts (Hessel et al. 2017), each on its own or together ---
    dueling: bool = False  # value and advantage streams (Wang et al. 2016, eq. 9)
    noisy: bool = False  # noisy head layers instead of epsilon-greedy (Fortunato et al. 2018)
    noisy_sigma0: float = 0.5  # factorised noise: sigma starts at sigma0 / sqrt(fan-in)
    distributional: bool = False  # C51: a categorical return distribution (Bellemare 2017)
    num_atoms: int = 51
    v_min: float = -10.0  # the support's ends
    v_max: float = 10.0
    n_step: int = 1  # multi-step returns (Sutton 1988; Hessel et al. 2017, eq. 2)
    prioritized: bool = False  # proportional prioritized replay (Schaul et al. 2016)
    priority_alpha: float = 0.6  # P(i) ~ (|delta_i| + eps)^alpha
    priority_beta: float = 0.4  # importance-sampling exponent, annealed to 1 over the run
    priority_eps: float = 1e-6
    # --- TD learning ---
    gamma: float = 0.99
    clip_rewards: bool = False  # train on rewards clipped to [-1, 1]; logged returns stay raw
    loss: str = "huber"
    huber_delta: float = 1.0
    double_dqn: bool = False
    target_update: str = "hard"
    target_update_interval: int = 500  # updates between hard copies
    tau: float = 0.005  # Polyak rate
    # --- optimisation ---
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"  # linear: anneal to 0 over the run's updates
    momentum: float = 0.0  # sgd and rmsprop
    rmsprop_decay: float = 0.95
    rmsprop_eps: float = 0.01
    rmsprop_centered: bool = False  # True: the DeepMind (Graves 2013) variant
    rmsprop_eps_in_sqrt: bool = True  # g / sqrt(v + eps); False: g / (sqrt(v) + eps)
    adam_eps: float = 1e-8
    max_grad_norm: float = 10.0  # 0 disables clipping
    batch_size: int = 64
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    train_freq: int = 1  # vector-env steps between training rounds
    gradient_steps: int = 1  # updates per training round
    prefill_random: bool = True  # act uniformly at random until learning_starts
    # --- exploration ---
    exploration: str = "epsilon_greedy"
    epsilon_schedule: str = "linear"
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_fraction: float = 0.1  # linear: fraction of total_steps to reach the end
    epsilon_steps: int = 0  # linear: steps to reach the end; 0: use epsilon_fraction
    epsilon_delay: int = 0  # linear: steps at epsilon_start before the anneal begins
    epsilon_decay: float = 1e-4  # exponential: rate per step; multiplicative: factor per update
    temperature: float = 1.0  # boltzmann
    # --- evaluation and artifacts ---
    eval_episodes: int = 100
    eval_epsilon: float = 0.0
    chunk_steps: int = 10_000  # steps per compiled chunk: logging / checkpoint granularity
    checkpoint_every: int = 0  # run clock units (reinforce: episodes) between checkpoints; 0: none
    checkpoint_minutes: float = 10.0  # also a checkpoint at least this often in training; 0: off
    save_replay: bool = True  # include the replay buffer in checkpoints
    gif: bool = True  # record one greedy episode after training
    qtrace_states: int = 500  # held-out random-policy states whose max-Q is traced; 0: off
    # --- model selection (like SB3's EvalCallback + StopTrainingOnRewardThreshold) ---
    select_every: int = 0  # steps between greedy evaluations that keep the best params; 0: off
    select_episodes: int = 32  # greedy episodes per selection evaluation
    stop_at_return: float = math.inf  # stop once every seed's best selection score reaches it
    # --- PQN (algo=pqn: Gallici et al. 2024): rollouts of num_envs x rollout_steps, no replay
    # and no target network; counts its budget in env steps like DQN ---
    rollout_steps: int = 32  # steps per env in each rollout
    num_epochs: int = 2  # passes over each rollout
    num_minibatches: int = 32  # minibatches per pass (they split num_envs x rollout_steps)
    q_lambda: float = 0.65  # lambda of the Q(lambda) returns
    reward_scale: float = 1.0  # the rewards PQN trains on are scaled by this
    # --- policy gradient (algo=reinforce: Williams 1992, as in Karpathy 2016) ---
    # reinforce counts its budget and checkpoint_every in episodes per seed, and uses
    # network=mlp (hidden_sizes, activation), gamma and the optimizer fields above.
    total_episodes: int = 1_000
    batch_episodes: int = 10  # episodes per update, played side by side from fresh resets
    policy: str = "softmax"  # bernoulli: 2 actions, P(action 1) = sigmoid(logit)
    reset_on_reward: bool = False  # returns restart after every non-zero reward (Pong points)
    standardize_returns: str = "batch"  # over the batch's steps, per episode, or not at all
    baseline: bool = False  # a learned V(s) (its own MLP) is subtracted from the returns
    baseline_coef: float = 0.5  # weight of the baseline's squared error in the loss
    use_bias: bool = True  # False: weights only, as Karpathy's policy network
    env_workers: int = 0  # host driver: processes that step the envs (0: this process)
    sparse_inputs: bool = False  # host driver: the net gets only each obs's non-zeros (exact)

    # ------------------------------------------------------------------
    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown config key(s) {', '.join(unknown)}: see `deepq train --help`")
        defaults = cls()
        d = {k: tuple(v) if isinstance(getattr(defaults, k), tuple) else v for k, v in d.items()}
        return cls(**d).validated()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @property
    def iterations(self) -> int:
        """Vector-env steps per seed."""
        return math.ceil(self.total_steps / self.num_envs)

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.num_seeds)]

    def validated(self) -> Config:
        """Return self, or raise UserError naming the first bad value and its fix."""
        self._check_kinds()
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise UserError(
                    f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}"
                )
        positive = ("num_seeds", "total_steps", "num_envs", "batch_size", "buffer_size",
                    "total_episodes", "batch_episodes", "rollout_steps", "num_epochs",
                    "num_minibatches",
                    "train_freq", "gradient_steps", "target_update_interval", "eval_episodes",
                    "chunk_steps", "select_episodes", "frame_skip", "frame_stack",
                    "max_episode_frames", "eval_max_frames")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be a positive integer, got {getattr(self, name)}")
        # The loops count env steps per seed (whole rollouts for PQN) in int32.
        if (self.iterations + self.rollout_steps) * self.num_envs > MAX_COUNT:
            raise UserError(f"total_steps={self.total_steps} with num_envs={self.num_envs} is "
                            f"more than the compiled loops can count (about {MAX_COUNT:,} env "
                            "steps per seed): lower total_steps")
        for name in ("learning_starts", "checkpoint_every", "seed", "select_every",
                     "epsilon_steps", "epsilon_delay", "frame_crop_top", "noop_max",
                     "eval_noop_max", "qtrace_states", "env_workers"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise UserError(
                f"hidden_sizes must be positive integers, got {list(self.hidden_sizes)}"
            )
        if len(self.frame_resize) != 2 or min(self.frame_resize) < 8:
            raise UserError(f"frame_resize={'x'.join(map(str, self.frame_resize))}: give height "
                            "x width, each at least 8 (e.g. 84x84)")
        height, width = self.frame_resize
        if height > width and self.frame_crop_top + width > height:
            raise UserError(f"frame_crop_top={self.frame_crop_top} cuts past the bottom of the "
                            f"{height}-row frame: use at most {height - width}")
        if self.n_step < 1:
            raise UserError(f"n_step must be a positive integer, got {self.n_step}")
        if self.buffer_size // self.num_envs < self.n_step:  # n steps per env must fit
            raise UserError(
                f"buffer_size={self.buffer_size} keeps {self.buffer_size // self.num_envs} "
                f"steps per env, too few for n_step={self.n_step}: raise buffer_size to at "
                f"least {self.n_step * self.num_envs}")
        if self.distributional and self.num_atoms < 2:
            raise UserError(f"num_atoms must be at least 2, got {self.num_atoms}")
        if self.distributional and not self.v_min < self.v_max:
            raise UserError(f"v_min={self.v_min} must be below v_max={self.v_max}")
        if self.network == "per_action" and (self.dueling or self.noisy or self.distributional):
            raise UserError("network=per_action has one plain output per action: dueling, "
                            "noisy and distributional heads need network=mlp or a CNN")
        if self.priority_alpha < 0 or not 0 <= self.priority_beta <= 1:
            raise UserError(f"priority_alpha must be >= 0 and priority_beta in [0, 1], got "
                            f"{self.priority_alpha} and {self.priority_beta}")
        if self.noisy_sigma0 <= 0:
            raise UserError(f"noisy_sigma0 must be > 0, got {self.noisy_sigma0}")
        if not self.checkpoint_minutes >= 0:
            raise UserError(f"checkpoint_minutes must be >= 0 (0: off), got "
                            f"{self.checkpoint_minutes}")
        if self.learning_rate <= 0:
            raise UserError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.sticky_actions < 1.0:
            raise UserError(f"sticky_actions must be in [0, 1), got {self.sticky_actions}")
        if not 0.0 <= self.gamma <= 1.0:
            raise UserError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise UserError(f"tau must be in (0, 1], got {self.tau}")
        for name in ("epsilon_start", "epsilon_end", "eval_epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.epsilon_fraction <= 1.0:
            raise UserError(f"epsilon_fraction must be in (0, 1], got {self.epsilon_fraction}")
        if self.epsilon_decay <= 0:
            raise UserError(f"epsilon_decay must be > 0, got {self.epsilon_decay}")
        if self.epsilon_schedule == "multiplicative" and self.epsilon_decay > 1:
            raise UserError(
                f"epsilon_decay={self.epsilon_decay} grows epsilon under the multiplicative "
                "schedule: use a factor in (0, 1], e.g. 0.995"
            )
        if self.temperature <= 0:
            raise UserError(f"temperature must be > 0, got {self.temperature}")
        if self.huber_delta <= 0:
            raise UserError(f"huber_delta must be > 0, got {self.huber_delta}")
        if self.max_grad_norm < 0:
            raise UserError(f"max_grad_norm must be >= 0 (0 disables), got {self.max_grad_norm}")
        if self.batch_size > self.buffer_size:
            raise UserError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}: "
                "lower batch_size or raise buffer_size"
            )
        return self

    def _check_kinds(self) -> None:
        """Every field has its type (an int where an int belongs: 1.0 is refused), every
        number is finite (stop_at_return may be inf), every count fits the compiled loops'
        int32 counters."""
        for f in dataclasses.fields(self):
            name, value, default = f.name, getattr(self, f.name), f.default
            if name == "preset":
                ok = value is None or isinstance(value, str)
                kind = "a preset name"
            elif isinstance(default, bool):
                ok, kind = isinstance(value, bool), "true or false"
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
                kind = "an integer"
                if ok and abs(value) > MAX_COUNT:
                    raise UserError(f"{name}={value} is more than the compiled loops can count "
                                    f"(at most {MAX_COUNT:,}): use a smaller value")
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                kind = "a number"
                if ok and not math.isfinite(value) and not (name in MAY_BE_INFINITE
                                                            and value == math.inf):
                    raise UserError(f"{name} must be a finite number, got {value}")
            elif isinstance(default, tuple):
                ok = isinstance(value, tuple) and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value)
                kind = "integers, e.g. 64,64"
            else:
                ok, kind = isinstance(value, str), "a string"
            if not ok:
                raise UserError(f"{name} must be {kind}, got {value!r}")

    @property
    def batches(self) -> int:
        """reinforce: updates per seed, each on `batch_episodes` episodes."""
        return math.ceil(self.total_episodes / self.batch_episodes)


def parse_value(key: str, text: str) -> Any:
    """Parse `text` into the type of Config field `key` (for --set key=value)."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if key == "preset":
        raise UserError("preset is not a hyperparameter: name it with --preset")
    if key not in fields:
        raise UserError(f"unknown hyperparameter {key!r} in --set: see `deepq train --help`")
    default = getattr(Config(), key)
    try:
        if isinstance(default, bool):
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            value = float(text)
            if not math.isfinite(value) or value != int(value):
                raise ValueError(text)
            return int(value)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
            return tuple(int(p) for p in parts)
        return text
    except ValueError:
        kind = type(default).__name__
        hint = {"tuple": " (e.g. 64,64)", "bool": " (true or false)"}.get(kind, "")
        article = "an" if kind[0] in "aeiou" else "a"
        raise UserError(f"--set {key}={text}: expected {article} {kind}{hint}") from None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"malformed override {pair!r}: write it as key=value, e.g. gamma=0.99")
        key, text = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        out[key] = parse_value(key, text.strip())
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The fields a `--config FILE` sets (YAML or JSON), with its preset under "preset" when
    it names one. A run's config.json (and a search's best_config.json) gives its "config"
    and "preset"; any other file is a flat mapping of Config fields."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UserError(f"cannot read --config {path}: {why}") from None
    yaml_file = path.suffix.lower() in (".yaml", ".yml")
    try:
        doc = yaml.safe_load(text) if yaml_file else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError):
        raise UserError(f"--config {path} is not valid {'YAML' if yaml_file else 'JSON'}: "
                        "fix it or name a .yaml / .json file") from None
    if isinstance(doc, dict) and isinstance(doc.get("config"), dict):
        fields = {**doc["config"], "preset": doc.get("preset", doc["config"].get("preset"))}
    elif isinstance(doc, dict):
        fields = dict(doc)
    else:
        raise UserError(f"--config {path} must hold a mapping of hyperparameters, e.g. "
                        "learning_rate: 0.001")
    fields = {str(k).replace("-", "_"): v for k, v in fields.items()}
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UserError(f"--config {path}: unknown key(s) {', '.join(unknown)}: see "
                        "`deepq train --help`")
    defaults = Config()
    fields = {k: tuple(v) if isinstance(getattr(defaults, k), tuple) and isinstance(v, list)
              else v for k, v in fields.items()}
    try:
        defaults.replace(**fields)._check_kinds()
    except UserError as exc:
        raise UserError(f"--config {path}: {exc}") from None
    return fields


def field_docs() -> dict[str, str]:
    """Each field's comment in Config's source (the line above it and its own), as
    `deepq train --help` prints it."""
    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(Config).splitlines():
        text = line.strip()
        if not text or text.startswith("# ---") or text.endswith("---"):
            pending = []  # a section title, or a blank line
            continue
        if text.startswith("#"):
            pending.append(text.lstrip("# "))
            continue
        match = re.match(r"(\w+): [^=]+=[^#]*?(?:#\s*(.*))?$", text)
        if match and match.group(1) in {f.name for f in dataclasses.fields(Config)}:
            docs[match.group(1)] = " ".join(pending + [match.group(2) or ""]).strip()
        pending = []
    return docs
