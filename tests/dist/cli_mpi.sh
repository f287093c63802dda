#!/usr/bin/env bash
# `mpirun -np 2 synapse train softmax --steps 30`, then --resume to step 60: one checkpoint after the
# first run (rank 0 writes; at step 30), the data-parallel line, one copy of the output (rank 0 prints),
# and a resumed run that starts from step 30 and ends at step 60.
# Then `synapse poem train` on the test poems under mpirun: one copy of its output, its files written.
#   cli_mpi.sh MPIRUN SYNAPSE MNIST_DIR WORK_DIR POEMS_DIR
set -euo pipefail
mpirun=$1 synapse=$2 data=$3 work=$4 poems=$5
rm -rf "$work"
run() {
  "$mpirun" --oversubscribe --allow-run-as-root -np 2 "$synapse" train softmax --data "$data" --logdir "$work" \
    --threads 1 "$@" 2>&1
}
fail() { echo "FAIL: $*"; exit 1; }

out=$(run --steps 30)
echo "$out"
grep -q "data-parallel over 2 MPI ranks: batch 100 per rank, 200 in all" <<< "$out" || fail "no data-parallel line"
[[ $(grep -c "test accuracy:" <<< "$out") == 1 ]] || fail "expected the result once (rank 0 only)"
grep -qE "test accuracy: [0-9]+\.[0-9]+% .*after 30 steps" <<< "$out" || fail "not 30 steps"
grep -qE "data-parallel: 2 ranks x 1 threads, [0-9]+ images/s" <<< "$out" || fail "no throughput line"
ckpts=$(ls "$work/checkpoints" | grep -c '^ckpt-.*\.syn$' || true)
[[ $ckpts == 1 ]] || fail "expected one checkpoint, found $ckpts: $(ls "$work/checkpoints")"
[[ -f "$work/checkpoints/ckpt-30.syn" ]] || fail "no ckpt-30.syn"
[[ -f "$work/model.syn" && -f "$work/history.json" ]] || fail "no model.syn or history.json"

out=$(run --steps 60 --resume)
echo "$out"
grep -qE "resumed from .*ckpt-30.syn \(epoch 0, step 30\)" <<< "$out" || fail "did not resume from step 30"
grep -qE "after 60 steps" <<< "$out" || fail "the resumed run did not end at step 60"
[[ -f "$work/checkpoints/ckpt-60.syn" ]] || fail "no ckpt-60.syn after the resumed run"

out=$("$mpirun" --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1 -np 2 "$synapse" poem train --data "$poems" \
  --logdir "$work/poem" --steps 2 --epochs 2 --batch 8 --embed 16 --units 32 --all 2>&1)
echo "$out"
[[ $(grep -c "Total params" <<< "$out") == 1 && $(grep -c "held-out perplexity: " <<< "$out") == 1 ]] ||
  fail "poem train: expected rank 0's output only"
[[ -f "$work/poem/model.syn" && -f "$work/poem/checkpoints/ckpt-2.syn" ]] || fail "poem train: no model.syn or ckpt-2.syn"
echo "cli_mpi: ok"
