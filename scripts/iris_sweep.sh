#!/usr/bin/env bash
# SPEC check 2: the two-layer Iris network (4 -> hidden tanh -> 3 softmax)
# swept over learning rate x hidden size, scored by 10-fold cross-validation.
#
# Why cross-validation: Iris has 150 flowers. A single 20% test split is 30
# flowers, so one mistake moves the test accuracy by 3.3 points and the
# result depends more on which flowers land in the test split than on the
# model. Stratified 10-fold cross-validation (configs/iris.json: "folds": 10)
# tests every flower exactly once, on a model that never saw it, so each
# combination's test accuracy is measured on all 150 flowers; the whole
# procedure is repeated for several seeds (each seed draws other folds, other
# validation flowers and other initial weights).
#
# Inside each fold 10% of the flowers are a validation split. The best
# combination is chosen by validation results only, never by test results,
# with the rule `janus train` uses for its best checkpoint: highest mean
# validation accuracy, ties broken by lower mean validation loss. Every model
# is the one after the last epoch (configs/iris.json's recipe).
#
# Writes experiments/iris_sweep/: results.md (the table) and best_loss.png /
# best_accuracy.png (train/validation curves of the chosen combination, fold 0
# of the first seed).
set -euo pipefail
cd "$(dirname "$0")/.."
janus=${JANUS:-$(bash scripts/build.sh | tail -n 1)}
learning_rates=${LEARNING_RATES:-"0.01 0.05 0.2"}
hidden_sizes=${HIDDEN_SIZES:-"4 16 64"}
seeds=${SEEDS:-"0 1 2 3 4"}
folds=${FOLDS:-10}
out=experiments/iris_sweep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# json_number FILE KEY: a top-level number of `janus evaluate --json` output.
json_number() { sed -n "s/^  \"$2\": \\([-0-9.eE+]*\\),\\{0,1\\}\$/\\1/p" "$1"; }

rows=""
best_val_acc="" best_val_loss="" best_combo="" best_run="" best_test=""
for lr in $learning_rates; do
  for h in $hidden_sizes; do
    errors_per_seed="" tested=0 errors=0 val_loss_sum=0 val_acc_sum=0 runs=0 first_run=""
    for seed in $seeds; do
      seed_errors=0
      for ((fold = 0; fold < folds; ++fold)); do
        run="iris_sweep_lr${lr}_h${h}_s${seed}_f${fold}"
        cfg="$tmp/$run.json"
        sed -e "s/\"n_out\": 16/\"n_out\": $h/" -e "s/\"lr\": 0.05/\"lr\": $lr/" -e "s/\"seed\": 0/\"seed\": $seed/" \
            -e "s/\"folds\": 10, \"fold\": 0/\"folds\": $folds, \"fold\": $fold/" configs/iris.json > "$cfg"
        grep -q "\"n_out\": $h" "$cfg" && grep -q "\"lr\": $lr" "$cfg" && grep -q "\"seed\": $seed" "$cfg" &&
          grep -q "\"folds\": $folds, \"fold\": $fold" "$cfg" ||
          { echo "iris_sweep: template substitution failed (configs/iris.json changed?)" >&2; exit 1; }
        "$janus" train --config "$cfg" --name "$run" --overwrite -q > /dev/null
        "$janus" evaluate --run "experiments/$run" --split test --checkpoint last --json "$tmp/test.json" > /dev/null
        "$janus" evaluate --run "experiments/$run" --split validation --checkpoint last --json "$tmp/val.json" > /dev/null
        n=$(json_number "$tmp/test.json" samples)
        acc=$(json_number "$tmp/test.json" accuracy)
        wrong=$(awk -v n="$n" -v a="$acc" 'BEGIN { printf "%d", n * (1 - a) + 0.5 }')
        seed_errors=$((seed_errors + wrong)) tested=$((tested + n))
        val_loss_sum=$(awk -v s="$val_loss_sum" -v l="$(json_number "$tmp/val.json" loss)" 'BEGIN { printf "%.9f", s + l }')
        val_acc_sum=$(awk -v s="$val_acc_sum" -v a="$(json_number "$tmp/val.json" accuracy)" 'BEGIN { printf "%.9f", s + a }')
        runs=$((runs + 1))
        [ -n "$first_run" ] || first_run=$run
      done
      errors=$((errors + seed_errors))
      errors_per_seed+="${errors_per_seed:+ / }$seed_errors"
    done
    val_loss=$(awk -v s="$val_loss_sum" -v r="$runs" 'BEGIN { printf "%.4f", s / r }')
    val_acc=$(awk -v s="$val_acc_sum" -v r="$runs" 'BEGIN { printf "%.2f", 100 * s / r }')
    test_acc=$(awk -v e="$errors" -v t="$tested" 'BEGIN { printf "%.2f", 100 * (1 - e / t) }')
    test_err=$(awk -v e="$errors" -v t="$tested" 'BEGIN { printf "%.2f", 100 * e / t }')
    printf 'lr %-5s hidden %-3s  validation accuracy %6s%% loss %s  test accuracy %6s%%  (%d of %d test predictions wrong; per seed: %s)\n' \
      "$lr" "$h" "$val_acc" "$val_loss" "$test_acc" "$errors" "$tested" "$errors_per_seed"
    rows+="| $lr | $h | $val_acc% | $val_loss | $test_err% | **$test_acc%** | $errors / $tested | $errors_per_seed |"$'\n'
    if [ -z "$best_val_acc" ] || awk -v a="$val_acc" -v b="$best_val_acc" -v la="$val_loss" -v lb="$best_val_loss" \
         'BEGIN { exit !(a > b || (a == b && la < lb)) }'; then
      best_val_acc=$val_acc best_val_loss=$val_loss best_combo="lr $lr, hidden $h" best_run=$first_run best_test=$test_acc
    fi
  done
done

cp "experiments/$best_run/loss.png" "$out/best_loss.png"
cp "experiments/$best_run/accuracy.png" "$out/best_accuracy.png"
{
  echo "# Iris sweep (learning rate x hidden size), 10-fold cross-validation"
  echo
  echo "Command: \`bash scripts/iris_sweep.sh\` (recipe: configs/iris.json; ${folds}-fold stratified"
  echo "cross-validation repeated for seeds $seeds, so every flower is a test flower once per seed, scored by a"
  echo "model that never saw it; 10% of the rest validates; the model after the last epoch is scored)."
  echo "The best combination has the highest mean validation accuracy, ties broken by the lower mean validation loss"
  echo "(the rule \`janus train\` uses for its best checkpoint); test results play no part in the choice."
  echo
  echo "| learning rate | hidden units | mean validation accuracy | mean validation loss | test error | test accuracy | wrong test predictions | wrong per seed |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Best by validation: $best_combo, test accuracy $best_test% (cross-validated)."
  echo "Its train/validation curves (fold 0, seed $(echo "$seeds" | awk '{ print $1 }')): best_loss.png, best_accuracy.png."
} > "$out/results.md.tmp"
mv "$out/results.md.tmp" "$out/results.md"
echo "best by validation: $best_combo, cross-validated test accuracy $best_test%; table in $out/results.md, loss plot in $out/best_loss.png"
