#!/usr/bin/env bash
# The signal lab's probe (docs/results.md, "Which signal"): every signal's AUROC per defect kind on three
# datasets, both loss spans, D_v of 5 and 20 (one valid_size sweep on the same texts), mild and severe defects;
# the self-evaluation judge with the full span (a judge's rating depends on neither the span nor D_v).
#   benchmarks/signal_lab_probe.sh            # writes cache/probes/signal-lab-<dataset>-<span>-<severity>/
#   SPANS=full benchmarks/signal_lab_probe.sh # only the full-span probes (the judge's)
#   .venv/bin/python benchmarks/probe_tables.py add docs/results/signal-lab-probe cache/probes/signal-lab-*
set -euo pipefail
PY=${PY:-.venv/bin/python}  # a clean worktree runs with the main venv: PY=/work/main/.venv/bin/python
cd "$(dirname "$0")/.."
for dataset in synthetic-arith gsm8k strategyqa; do
  data=()
  [ "$dataset" = synthetic-arith ] || data=(--set "data_dir=../shared/data/$dataset")
  for severity in mild severe; do
    for span in ${SPANS:-full completion}; do
      judge=()
      [ "$span" = full ] && judge=(--self-eval)
      echo "$dataset $severity $span start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
      $PY -m iwsi.cli probe --set "dataset=$dataset" "${data[@]}" --set "loss_span=$span" --n 100 \
          --sweep valid_size=5,20 --severity "$severity" "${judge[@]}" --name "signal-lab-$dataset-$span-$severity" > /dev/null
    done
  done
done
echo "done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
