#!/usr/bin/env bash
# Janus's main job: builds the tool and trains the default CIFAR-10 model
# (configs/cifar10.json) into experiments/cifar10/. Extra arguments go to
# `janus train`, e.g. --epochs 2, --device cpu, --name myrun, --overwrite.
set -euo pipefail
cd "$(dirname "$0")/.."
janus=$(bash scripts/build.sh | tail -n 1)
exec "$janus" train --config configs/cifar10.json "$@"
