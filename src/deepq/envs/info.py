"""What deepq needs to know of an env id: its family, spaces and observation dtype."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvInfo:
    env_id: str
    family: str  # classic, minatar, gymnasium or atari (envs/families.py)
    obs_shape: tuple[int, ...]
    num_actions: int
    obs_dtype: str = "float32"  # what replay stores (bool MinAtar planes, uint8 pixels)

    @property
    def backend(self) -> str:
        """Where training steps the env: "gymnax" (in JAX) or "gymnasium" (on the host)."""
        return "gymnax" if self.family in ("classic", "minatar") else "gymnasium"

    @property
    def reference_id(self) -> str | None:
        """The Gymnasium id a run is evaluated on; None when it is evaluated in gymnax."""
        return None if self.family == "minatar" else self.env_id
