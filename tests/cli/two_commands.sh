#!/usr/bin/env bash
# The README's two commands share one build folder and may run in either order. scripts/quickstart
# configures it without the tests; scripts/test, run after it, must switch them back on (a cached
# SYNAPSE_BUILD_TESTS=OFF once made it print "No tests were found" and pass). Both scripts are run
# for real on a scratch folder, stopping after their configure step (SYNAPSE_CONFIGURE_ONLY=1).
set -euo pipefail
root=$1
scratch=$2
rm -rf "$scratch"
export SYNAPSE_BUILD_DIR=$scratch SYNAPSE_CONFIGURE_ONLY=1

cached() { sed -n "s/^$1:BOOL=//p" "$scratch/CMakeCache.txt"; }
count() { ctest --test-dir "$scratch" -N | sed -n 's/^Total Tests: //p'; }
expect() {  # WHAT EXPECTED FOUND
  if [[ "$2" != "$3" ]]; then echo "FAIL: $1: expected $2, found $3" >&2; exit 1; fi
  echo "ok: $1 = $3"
}

"$root/scripts/quickstart"
expect "SYNAPSE_BUILD_TESTS after quickstart" OFF "$(cached SYNAPSE_BUILD_TESTS)"
expect "tests after quickstart" 0 "$(count)"

"$root/scripts/test"
expect "SYNAPSE_BUILD_TESTS after quickstart, test" ON "$(cached SYNAPSE_BUILD_TESTS)"
expect "SYNAPSE_BUILD_EXAMPLES after quickstart, test" ON "$(cached SYNAPSE_BUILD_EXAMPLES)"
n=$(count)
# Every test this source tree defines with add_test (the unit tests are discovered from the built
# binaries later, and each binary contributes a placeholder until then).
if (( n < 40 )); then echo "FAIL: only $n tests configured after quickstart, test" >&2; exit 1; fi
echo "ok: $n tests configured after quickstart, test"
grep -q -- '--no-tests=error' "$root/scripts/test" || { echo "FAIL: scripts/test lets ctest pass on no tests" >&2; exit 1; }

# And the other order: the test command's build keeps working for quickstart.
"$root/scripts/quickstart"
expect "SYNAPSE_BUILD_TESTS after test, quickstart" OFF "$(cached SYNAPSE_BUILD_TESTS)"
rm -rf "$scratch"
echo "the two commands configure the shared build folder correctly in either order"
