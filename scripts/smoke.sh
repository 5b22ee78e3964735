#!/usr/bin/env bash
# Smoke training of each dataset for a few batches, then evaluate and predict
# on the output (CI runs this; the full runs are in the README).
#   scripts/smoke.sh PATH/TO/janus
# Iris runs on the build's default device (the CUDA simulator in a SIM build,
# a real GPU where there is one); Fashion-MNIST and CIFAR-10 run on the CPU,
# because a simulated GPU would take minutes per batch of real images.
set -euo pipefail
janus=$(realpath "$1")
shift
cd "$(dirname "$0")/.."
exp=$(mktemp -d)
trap 'rm -rf "$exp"' EXIT
common=(--experiments-dir "$exp" --overwrite -q)
cpu=(--device cpu)

echo "--- iris: 3 epochs"
"$janus" train --config configs/iris.json --name iris --epochs 3 --device auto "${common[@]}"
"$janus" evaluate --run "$exp/iris" --split test --device auto | grep -E "^(samples|accuracy)"

if [ -d /usr/share/datasets/fashion-mnist ] || [ -n "${JANUS_DATA_DIR:-}" ]; then
  echo "--- fashion-mnist: 20 batches"
  "$janus" train --config configs/fashion_mnist.json --name fmnist --epochs 1 --max-steps 20 "${common[@]}" "${cpu[@]}"
  "$janus" evaluate --run "$exp/fmnist" --checkpoint last "${cpu[@]}" | grep -E "^(samples|accuracy)"
else
  echo "--- fashion-mnist: not installed (apt-get install dataset-fashion-mnist); skipped"
fi

echo "--- cifar-10: 3 batches"
"$janus" train --config configs/cifar10.json --name cifar --epochs 1 --max-steps 3 "${common[@]}" "${cpu[@]}"
data_dir=$("$janus" info | sed -n 's/^data dir *//p' | head -n 1)
batch5=""
for d in "${JANUS_DATA_DIR:-}" ./data ../shared/data; do
  [ -n "$d" ] && [ -f "$d/cifar-10-batches-bin/data_batch_5.bin" ] && { batch5="$d/cifar-10-batches-bin/data_batch_5.bin"; break; }
done
[ -n "$batch5" ] || { echo "smoke: CIFAR-10 data_batch_5.bin not found (looked in \$JANUS_DATA_DIR, ./data, ../shared/data; janus info says: $data_dir)"; exit 1; }
"$janus" evaluate --run "$exp/cifar" --checkpoint last --data "$batch5" "${cpu[@]}" | grep -E "^(samples|accuracy)"
"$janus" predict --run "$exp/cifar" --checkpoint last --data "$batch5" --out "$exp/predictions.csv" "${cpu[@]}"
head -n 1 "$exp/predictions.csv" | grep -qx "Id,Category" || { echo "smoke: predictions.csv header is wrong"; exit 1; }
rows=$(($(wc -l < "$exp/predictions.csv") - 1))
[ "$rows" -eq 10000 ] || { echo "smoke: predictions.csv has $rows rows, expected 10000"; exit 1; }
awk -F, 'NR > 1 && ($1 != NR - 2 || $2 !~ /^[0-9]$/) { bad = 1 } END { exit bad }' "$exp/predictions.csv" ||
  { echo "smoke: predictions.csv rows are not Id (from 0) and a class index 0-9"; exit 1; }
echo "smoke: all datasets trained, evaluated and predicted"
