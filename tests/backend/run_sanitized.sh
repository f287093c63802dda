#!/usr/bin/env bash
# Runs test binaries of the sanitizer build N at a time (portable_build.cmake calls it):
#   run_sanitized.sh JOBS LOG_DIR BINARY[:GTEST_FILTER]...
# Each binary's output goes to LOG_DIR/NAME.log; prints one line per binary (its wall and CPU seconds) and,
# for each that failed (a test failure, a sanitizer report, a leak), the end of its log. Fails if any did.
set -uo pipefail
jobs=$1 logs=$2
shift 2
mkdir -p "$logs"
run_one() {
  local spec=$1 bin filter=() name
  bin=${spec%%:*}
  [[ $spec == *:* ]] && filter=(--gtest_filter="${spec#*:}")
  name=$(basename "$bin")
  local TIMEFORMAT='%R %U %S' rc
  { time "$bin" --gtest_brief=1 "${filter[@]}" > "$logs/$name.log" 2>&1; } 2> "$logs/$name.time"
  rc=$?
  if ((rc == 0)); then
    awk -v n="$name" '{printf "sanitized %-18s ok      %5.0f s wall, %6.1f s CPU\n", n, $1, $2 + $3}' "$logs/$name.time"
  else
    printf 'sanitized %-18s FAILED (exit %d; log: %s)\n' "$name" "$rc" "$logs/$name.log"
    tail -n 60 "$logs/$name.log"
    return 1
  fi
}
export -f run_one
export logs
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}
