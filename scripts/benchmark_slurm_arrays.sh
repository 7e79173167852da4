#!/usr/bin/env bash
# Whole-run wall time of N trivial shard jobs on a SLURM cluster (e.g. scripts/slurm_single_node.sh):
# job arrays (--slurm-array-jobs=infer_shard) against the slurm profile's default, one sbatch per shard.
#   bash scripts/benchmark_slurm_arrays.sh [N=100] [PYTHON=python] [MODES="array single"]
# ARRAY_LIMIT=K: at most K tasks per array submission (--slurm-array-limit).
set -euo pipefail
N=${1:-100}
PY=${2:-python}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MODES=${3:-array single}
for mode in $MODES; do
  D=$WORK/$mode
  mkdir -p "$D/data"
  cp -r "$REPO"/{Snakefile,workflow,profiles,scripts,config} "$D/"
  for i in $(seq 0 $((N - 1))); do echo "$i" > "$D/data/item$(printf %05d "$i").txt"; done
  printf 'def init():\n    pass\n\ndef run(mini_batch):\n    return [p.rsplit("/", 1)[-1] for p in mini_batch]\n' > "$D/scripts/trivial.py"
  printf 'run_name: bench\ninput: {path: data}\nentry_script: trivial.py\nsource_directory: scripts\nmini_batch_size: 1\nprocess_count_per_node: %s\n' "$N" > "$D/config/config.yaml"
  sed -i '/^slurm-array-jobs:/d' "$D/profiles/slurm/config.yaml"
  extra=()
  if [ "$mode" = array ]; then
    extra=(--slurm-array-jobs infer_shard)
    if [ -n "${ARRAY_LIMIT:-}" ]; then extra+=(--slurm-array-limit "$ARRAY_LIMIT"); fi
  fi
  start=$(date +%s.%N)
  (cd "$D" && "$PY" -m snakemake --profile profiles/slurm --jobs "$N" --slurm-status-command squeue \
     --slurm-init-seconds-before-status-checks 2 "${extra[@]}" > "$WORK/$mode.log" 2>&1) || { tail -30 "$WORK/$mode.log"; exit 1; }
  end=$(date +%s.%N)
  lines=$(wc -l < "$D/results/bench/parallel_run_step.txt")
  sbatch_calls=$(grep -c -E "^Submitted array job|has been submitted with SLURM jobid" "$WORK/$mode.log" || true)
  failed=$(grep -c "^Error in rule infer_shard" "$WORK/$mode.log" || true)
  echo "$mode: $N shards, $lines result lines, $sbatch_calls sbatch call(s), $failed failed job(s), wall $(echo "$end - $start" | bc) s"
done
