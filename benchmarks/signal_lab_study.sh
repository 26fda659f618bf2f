#!/usr/bin/env bash
# The signal lab's study (docs/results.md, "Which signal"): per seed, loss, ifd, random and lmsi at k = 80 in
# configs/arith-pool-strong.yaml, then iwsi with valid_center=median on the same generations (hard-linked),
# then the per-question results into docs/results/signal-lab (commit them after each seed).
#   benchmarks/signal_lab_study.sh 0 1 2 3 4
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}  # a clean worktree runs with the main venv: PY=/work/main/.venv/bin/python
IWSI="$PY -m iwsi.cli"
for seed in "$@"; do
  echo "seed $seed start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $IWSI ablate --config configs/arith-pool-strong.yaml --methods random,loss,ifd,lmsi --k 80 --seeds "$seed" \
      --out cache/ablations/signal-lab
  $IWSI ablate --config configs/arith-pool-strong.yaml --methods iwsi --k 80 --seeds "$seed" \
      --set valid_center=median --out cache/ablations/signal-lab-median --shared-from cache/ablations/signal-lab
  $PY benchmarks/study_tables.py add cache/ablations/signal-lab docs/results/signal-lab
  $PY benchmarks/study_tables.py add cache/ablations/signal-lab-median docs/results/signal-lab \
      --as-method iwsi-median
  echo "seed $seed done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
done
