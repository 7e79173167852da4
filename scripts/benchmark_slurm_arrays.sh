#!/usr/bin/env bash
# Whole-run wall time of N trivial shard jobs on a SLURM cluster (e.g. scripts/slurm_single_node.sh):
# the slurm profile as it is (job arrays: --slurm-array-jobs=infer_shard) against one sbatch per shard.
#   bash scripts/benchmark_slurm_arrays.sh [N=100] [PYTHON=python]
set -euo pipefail
N=${1:-100}
PY=${2:-python}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for mode in array single; do
  D=$WORK/$mode
  mkdir -p "$D/data"
  cp -r "$REPO"/{Snakefile,workflow,profiles,scripts,config} "$D/"
  for i in $(seq 0 $((N - 1))); do echo "$i" > "$D/data/item$(printf %05d "$i").txt"; done
  printf 'def init():\n    pass\n\ndef run(mini_batch):\n    return [p.rsplit("/", 1)[-1] for p in mini_batch]\n' > "$D/scripts/trivial.py"
  printf 'run_name: bench\ninput: {path: data}\nentry_script: trivial.py\nsource_directory: scripts\nmini_batch_size: 1\nprocess_count_per_node: %s\n' "$N" > "$D/config/config.yaml"
  if [ "$mode" = single ]; then sed -i '/^slurm-array-jobs:/d' "$D/profiles/slurm/config.yaml"; fi
  start=$(date +%s.%N)
  (cd "$D" && "$PY" -m snakemake --profile profiles/slurm --jobs "$N" --slurm-status-command squeue \
     --slurm-init-seconds-before-status-checks 2 > "$WORK/$mode.log" 2>&1) || { tail -30 "$WORK/$mode.log"; exit 1; }
  end=$(date +%s.%N)
  lines=$(wc -l < "$D/results/bench/parallel_run_step.txt")
  sbatch_calls=$(grep -c -E "^Submitted (array )?job" "$WORK/$mode.log" || true)
  echo "$mode: $N shards, $lines result lines, $sbatch_calls submission message(s), wall $(echo "$end - $start" | bc) s"
done
