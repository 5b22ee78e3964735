#!/usr/bin/env bash
# SPEC check 2: the two-layer Iris network swept over learning rate x hidden
# size. Each combination trains with configs/iris.json's recipe (SGD with
# momentum, stratified 60/20/20 train/validation/test split, standardised
# with training statistics) and is scored on its held-out test split with the
# checkpoint that was best on validation. With 30 test flowers one mistake is
# 3.3 points, so every combination is repeated over several seeds (each seed
# draws a different split and different initial weights) and the table gives
# the mean test error and each seed's. Writes experiments/iris_sweep/
# (results.md, and best_loss.png / best_accuracy.png: the curves of the best
# combination's first seed).
set -euo pipefail
cd "$(dirname "$0")/.."
janus=${JANUS:-$(bash scripts/build.sh | tail -n 1)}
learning_rates=${LEARNING_RATES:-"0.01 0.05 0.2"}
hidden_sizes=${HIDDEN_SIZES:-"4 16 64"}
seeds=${SEEDS:-"0 1 2 3 4"}
out=experiments/iris_sweep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

rows=""
best_mean=-1 best_combo="" best_first_run=""
for lr in $learning_rates; do
  for h in $hidden_sizes; do
    accs=""
    first_run=""
    for seed in $seeds; do
      run="iris_sweep_lr${lr}_h${h}_s${seed}"
      cfg="$tmp/$run.json"
      sed -e "s/\"n_out\": 16/\"n_out\": $h/" -e "s/\"lr\": 0.05/\"lr\": $lr/" -e "s/\"seed\": 0/\"seed\": $seed/" \
        configs/iris.json > "$cfg"
      grep -q "\"n_out\": $h" "$cfg" && grep -q "\"lr\": $lr" "$cfg" && grep -q "\"seed\": $seed" "$cfg" ||
        { echo "iris_sweep: template substitution failed" >&2; exit 1; }
      "$janus" train --config "$cfg" --name "$run" --overwrite -q > /dev/null
      "$janus" evaluate --run "experiments/$run" --split test --json "$tmp/eval.json" > /dev/null
      accs+=" $(sed -n 's/^  "accuracy": \(.*\),$/\1/p' "$tmp/eval.json")"
      [ -n "$first_run" ] || first_run=$run
    done
    mean=$(echo "$accs" | awk '{ s = 0; for (i = 1; i <= NF; ++i) s += $i; printf "%.6f", s / NF }')
    per_seed=$(echo "$accs" | awk '{ for (i = 1; i <= NF; ++i) printf "%s%.1f", (i > 1 ? " / " : ""), 100 * (1 - $i) }')
    printf 'lr %-5s hidden %-3s  mean test accuracy %6.2f%%  test error per seed (%%): %s\n' "$lr" "$h" \
      "$(awk -v m="$mean" 'BEGIN { print 100 * m }')" "$per_seed"
    rows+="| $lr | $h | $(awk -v m="$mean" 'BEGIN { printf "%.2f%%", 100 * (1 - m) }') | $(awk -v m="$mean" 'BEGIN { printf "%.2f%%", 100 * m }') | $per_seed |"$'\n'
    if awk -v a="$mean" -v b="$best_mean" 'BEGIN { exit !(a > b) }'; then
      best_mean=$mean best_combo="lr $lr, hidden $h" best_first_run=$first_run
    fi
  done
done

cp "experiments/$best_first_run/loss.png" "$out/best_loss.png"
cp "experiments/$best_first_run/accuracy.png" "$out/best_accuracy.png"
{
  echo "# Iris sweep (learning rate x hidden size)"
  echo
  echo "Command: \`bash scripts/iris_sweep.sh\`. Each row: seeds $seeds (each a different stratified"
  echo "60/20/20 split and initialisation); test split = 30 flowers never used for training or model selection."
  echo
  echo "| learning rate | hidden units | mean test error | mean test accuracy | test error per seed (%) |"
  echo "|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Best: $best_combo (mean test accuracy $(awk -v m="$best_mean" 'BEGIN { printf "%.2f%%", 100 * m }')); loss curves of its first seed: best_loss.png."
} > "$out/results.md.tmp"
mv "$out/results.md.tmp" "$out/results.md"
echo "best: $best_combo; table in $out/results.md, loss plot in $out/best_loss.png"
