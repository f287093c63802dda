#!/usr/bin/env bash
# The libFuzzer smoke run of the test suite (test fuzz_smoke): builds tests/fuzz_smoke (the parsers' fuzz
# targets with clang, libFuzzer, ASan and UBSan) in WORK_DIR and runs every target for RUNS inputs with a fixed
# seed (the same inputs every time: no flaky findings; at most 60 s each), two at a time, from its committed seeds (fuzz/corpus/TARGET; new inputs go to WORK_DIR/corpus, never into git).
# Any finding (crash, leak, UB, uncaught exception, 10 s on one input, more than 1 GiB) fails the test and is
# saved in WORK_DIR/findings/TARGET/. Without clang++-14 it prints "fuzz smoke: skipped" (the test skips).
#   run.sh SOURCE_DIR WORK_DIR RUNS [LAUNCHER]
set -uo pipefail
root=$1 work=$2 runs=$3 launcher=${4:-}
cxx=$(command -v clang++-14 || true)
if [[ -z $cxx ]]; then
  echo "fuzz smoke: skipped (no clang++-14: scripts/setup installs it)"
  exit 0
fi
launch=()
[[ -n $launcher ]] && launch=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
mkdir -p "$work"
if ! cmake -S "$root/tests/fuzz_smoke" -B "$work/build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1" "${launch[@]}" > "$work/configure.log" 2>&1; then
  cat "$work/configure.log"; echo "fuzz smoke: configuring failed"; exit 1
fi
if ! cmake --build "$work/build" -j "$(nproc)" > "$work/build.log" 2>&1; then
  tail -n 80 "$work/build.log"; echo "fuzz smoke: building failed"; exit 1
fi
mapfile -t targets < <(sed -n 's/^set(SYNAPSE_FUZZ_SMOKE_TARGETS \(.*\))$/\1/p' "$root/tests/fuzz_smoke/CMakeLists.txt" | tr ' ' '\n')
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_one() {
  local t=$1 log=$work/logs/$1.log
  rm -rf "$work/corpus/$t"
  mkdir -p "$work/corpus/$t" "$work/findings/$t" "$work/logs"
  if "$work/build/fuzz_$t" -runs="$runs" -seed=1 -max_total_time=60 -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$work/findings/$t/" "$work/corpus/$t" "$root/fuzz/corpus/$t" > "$log" 2>&1; then
    printf 'fuzz smoke: %-10s %9s executions, ok\n' "$t" "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  else
    printf 'fuzz smoke: %-10s FINDING (saved in %s)\n' "$t" "$work/findings/$t"
    grep -v '^#' "$log" | tail -n 60
    return 1
  fi
}
export -f run_one
export work root runs
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'run_one "$1"' _ {}
