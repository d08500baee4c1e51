#!/usr/bin/env bash
# Create the throwaway peer venvs for the CartPole and Atari benchmarks, OUTSIDE the repo.
#
# Usage: benchmarks/peers_setup.sh [CLEANRL_CHECKOUT]
#
#   CLEANRL_CHECKOUT (or env CLEANRL_REPO): a CleanRL clone (work tree) or a
#   bare git dir of https://github.com/vwxyzjn/cleanrl. Needed only for the
#   CleanRL peer; without it that peer is skipped.
#   DEEPQ_PEERS_DIR: where the peers live (default /tmp/deepq-peers).
#   TORCH_WHEEL: a local CPU torch wheel (default: the one in /opt/wheels);
#   if it is missing, torch comes from the CPU index of download.pytorch.org.
#   DEEPQ_PY: deepq's python (default .venv/bin/python next to this dir); the
#   Atari peer venv pins jax/jaxlib/flax/optax/ale-py to the versions it has.
#
# Idempotent: an existing venv (marked by .ok) is kept. Delete the dir to redo.
set -euo pipefail

PEERS="${DEEPQ_PEERS_DIR:-/tmp/deepq-peers}"
CLEANRL_SRC="${1:-${CLEANRL_REPO:-}}"
TORCH_WHEEL="${TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}"
PY="${PYTHON:-python3}"
DEEPQ_PY="${DEEPQ_PY:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}"

install_torch() {
    if [[ -f "$TORCH_WHEEL" ]]; then
        "$1/bin/pip" install -q "$TORCH_WHEEL"
    else
        "$1/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch
    fi
}

# make_venv DIR PKG... : venv at DIR with torch (CPU) installed first, then PKGs.
make_venv() {
    local dir="$1"; shift
    if [[ -f "$dir/.ok" ]]; then echo "ok: $dir exists"; return; fi
    "$PY" -m venv "$dir"
    "$dir/bin/pip" install -q --upgrade pip
    install_torch "$dir"
    "$dir/bin/pip" install -q "$@"
    "$dir/bin/pip" freeze > "$dir/requirements.lock"
    touch "$dir/.ok"
    echo "made: $dir"
}

# show_file PATH: print PATH from the CleanRL checkout (work tree or git dir).
show_file() {
    if [[ -f "$CLEANRL_SRC/$1" ]]; then
        cat "$CLEANRL_SRC/$1"
    else
        git --git-dir="$CLEANRL_SRC" show "HEAD:$1"
    fi
}

setup_cleanrl_code() {
    local dst="$PEERS/cleanrl/src"
    mkdir -p "$dst/cleanrl" "$dst/cleanrl_utils/evals"
    show_file cleanrl/dqn.py > "$dst/cleanrl/dqn.py"
    show_file cleanrl_utils/buffers.py > "$dst/cleanrl_utils/buffers.py"
    touch "$dst/cleanrl/__init__.py" "$dst/cleanrl_utils/__init__.py" "$dst/cleanrl_utils/evals/__init__.py"
    # dqn.py --save-model runs CleanRL's own 10-episode eval with video capture.
    # We evaluate separately (100 greedy episodes), so make that a no-op: it
    # would otherwise add video encoding to the timed training process.
    printf 'def evaluate(*args, **kwargs):\n    return []\n' > "$dst/cleanrl_utils/evals/dqn_eval.py"
    show_file cleanrl/dqn.py | sha256sum | cut -c1-16 > "$dst/dqn.py.sha256"
    if [[ ! -f "$CLEANRL_SRC/cleanrl/dqn.py" ]]; then
        git --git-dir="$CLEANRL_SRC" rev-parse HEAD > "$dst/COMMIT"
    fi
    echo "cleanrl code: $dst"
}

# setup_cleanrl_atari_code: cleanrl/dqn_atari_jax.py and the cleanrl_utils modules it
# imports (atari_wrappers, buffers) into the same src tree.
setup_cleanrl_atari_code() {
    local dst="$PEERS/cleanrl/src"
    mkdir -p "$dst/cleanrl" "$dst/cleanrl_utils"
    show_file cleanrl/dqn_atari_jax.py > "$dst/cleanrl/dqn_atari_jax.py"
    show_file cleanrl_utils/atari_wrappers.py > "$dst/cleanrl_utils/atari_wrappers.py"
    show_file cleanrl_utils/buffers.py > "$dst/cleanrl_utils/buffers.py"
    touch "$dst/cleanrl/__init__.py" "$dst/cleanrl_utils/__init__.py"
    show_file cleanrl/dqn_atari_jax.py | sha256sum | cut -c1-16 > "$dst/dqn_atari_jax.py.sha256"
    if [[ ! -f "$CLEANRL_SRC/cleanrl/dqn_atari_jax.py" ]]; then
        git --git-dir="$CLEANRL_SRC" rev-parse HEAD > "$dst/COMMIT"
    fi
    echo "cleanrl atari code: $dst"
}

# setup_cleanrl_pqn_code: cleanrl/pqn_atari_envpool.py (self-contained) into the src tree.
setup_cleanrl_pqn_code() {
    local dst="$PEERS/cleanrl/src"
    mkdir -p "$dst/cleanrl"
    show_file cleanrl/pqn_atari_envpool.py > "$dst/cleanrl/pqn_atari_envpool.py"
    show_file cleanrl/pqn_atari_envpool.py | sha256sum | cut -c1-16 \
        > "$dst/pqn_atari_envpool.py.sha256"
    echo "cleanrl pqn code: $dst"
}

# pin_like_deepq PKG...: "PKG==VERSION" as installed in deepq's venv, else plain "PKG".
pin_like_deepq() {
    local pkg ver
    for pkg in "$@"; do
        ver=""
        if [[ -x "$DEEPQ_PY" ]]; then
            ver="$("$DEEPQ_PY" -c "import importlib.metadata as m; print(m.version('$pkg'))" \
                2>/dev/null || true)"
        fi
        if [[ -n "$ver" ]]; then echo "$pkg==$ver"; else echo "$pkg"; fi
    done
}

mkdir -p "$PEERS"
make_venv "$PEERS/sb3-venv" "stable-baselines3>=2,<3" "gymnasium"

if [[ -n "$CLEANRL_SRC" ]]; then
    setup_cleanrl_code
    # Versions per CleanRL's pyproject (gymnasium 0.29.1); numpy<2 for gymnasium 0.29.
    make_venv "$PEERS/cleanrl-venv" "gymnasium==0.29.1" "numpy<2" "tyro>=0.5.10" "tensorboard>=2.10"
    # dqn_atari_jax.py: gymnasium 0.29.1 (its wrappers and vector-env API: GrayScaleObservation,
    # FrameStack, final_observation), JAX on CPU; torch only for cleanrl_utils/buffers.py.
    setup_cleanrl_atari_code
    mapfile -t pinned < <(pin_like_deepq jax jaxlib flax optax ale-py)
    make_venv "$PEERS/cleanrl-atari-venv" "gymnasium==0.29.1" "${pinned[@]}" \
        "opencv-python-headless" "tyro>=0.5.10" "tensorboard>=2.10"
    # pqn_atari_envpool.py: torch (CPU), envpool (the releases PyPI has for this Python,
    # >= 0.8) and gym 0.23 for its wrapper classes.
    setup_cleanrl_pqn_code
    make_venv "$PEERS/cleanrl-pqn-venv" "envpool" "gym==0.23.1" "tyro>=0.5.10" \
        "tensorboard>=2.10"
else
    echo "skip cleanrl: pass a CleanRL checkout as \$1 or CLEANRL_REPO" >&2
fi
