#!/usr/bin/env bash
# Janus's main job: builds the tool and trains the default CIFAR-10 model
# (configs/cifar10.json) into experiments/cifar10/. Extra arguments go to
# `janus train`, e.g. --epochs 2, --device cpu, --name myrun, --overwrite.
set -euo pipefail
cd "$(dirname "$0")/.."
janus=$(bash scripts/build.sh | tail -n 1)
# Idle OpenMP threads sleep instead of spinning: on a machine shared with
# other jobs spinning halves training speed (docs/RESULTS-cifar10.md); on a
# quiet one the cost is a few microseconds per parallel region.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
exec "$janus" train --config configs/cifar10.json "$@"
