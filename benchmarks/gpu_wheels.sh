#!/usr/bin/env bash
# Fetch the wheels that benchmarks/gpu_pong.sh installs on a GPU machine without network
# access into .whl/ (git-ignored). That machine has Python 3.12 with JAX (CUDA), flax,
# optax, numpy, matplotlib, imageio, rich and pandas; deepq's other run-time needs travel.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
for pkg in gymnasium==1.3.0 farama-notifications==0.0.4 ale-py==0.12.1 gymnax==1.0.1 \
           tensorboardX==2.6.5; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$pkg"
done
du -sh .whl
