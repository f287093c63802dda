# The portable build (-DSYNAPSE_NATIVE=OFF), checked from the test suite:
#   1. configures a sub-build of the library and test_ops only (no examples, no ONNX), with the parent
#      build's compiler launcher (ccache) so a second run recompiles nothing;
#   2. checks its objects with check_isa_objects.py: no ymm/zmm instruction in any object of the
#      library except the avx2 / avx512 kernel copies, and none in their weak functions;
#   3. runs the kernel tests of test_ops under SYNAPSE_ISA set to each path this CPU supports.
# With -DSANITIZE=address,undefined (what tests/CMakeLists.txt passes) the same sub-build is also the
# sanitizer build (README, "Reliability"): every object is compiled with AddressSanitizer and UBSan, the
# kernel tests above run under them, and so do the gtest binaries of UNIT_TESTS (LeakSanitizer on) and
# every fuzz target's corpus through fuzz_replay. The library keeps its -O3 (its own flags), so the object
# check sees the code it ships; the test sources are compiled at -O1 -g1, which halves their compile time.
#
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DLAUNCHER=... -DFILTER=... -DPYTHON=...
#         [-DSANITIZE=address,undefined -DUNIT_TESTS=test_core,test_ops:FILTER,...] -P portable_build.cmake
foreach(v SOURCE_DIR WORK_DIR FILTER)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "portable_build.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT PYTHON)
  set(PYTHON python3)
endif()
set(launch)
string(REPLACE "," ";" UNIT_TESTS "${UNIT_TESTS}")
# Configured explicitly both ways: the cache of an earlier run keeps whatever it was given.
set(test_flags "-DCMAKE_CXX_FLAGS_RELEASE=-O3 -DNDEBUG")
if(SANITIZE)
  set(test_flags "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG")
endif()
if(LAUNCHER)
  set(launch -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER} -DCMAKE_C_COMPILER_LAUNCHER=${LAUNCHER})
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR} -DCMAKE_BUILD_TYPE=Release -DSYNAPSE_NATIVE=OFF
          -DSYNAPSE_BUILD_TESTS=ON -DSYNAPSE_BUILD_EXAMPLES=OFF -DSYNAPSE_WITH_ONNX=OFF -DSYNAPSE_WERROR=ON ${launch}
          -DSYNAPSE_SANITIZE=${SANITIZE} ${test_flags}
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "portable build: configuring ${WORK_DIR} failed (${rc})")
endif()
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
set(targets test_ops)
set(binaries)
if(SANITIZE)
  foreach(t IN LISTS UNIT_TESTS)
    string(REGEX REPLACE ":.*" "" name "${t}")
    list(APPEND targets ${name})
    list(APPEND binaries ${WORK_DIR}/tests/${t})
  endforeach()
  list(REMOVE_DUPLICATES targets)
  list(APPEND targets fuzz_replay)
  # A UBSan report stops the test (-fno-sanitize-recover); LeakSanitizer reports at exit.
  set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=0:strict_string_checks=1")
  set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR} --target ${targets} -j ${cores}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "portable build: building ${targets} failed (${rc}):\n${out}")
endif()

# Every object of libsynapse: the avx2 / avx512 kernel copies by name, the rest generic.
file(GLOB_RECURSE objects ${WORK_DIR}/src/*.o)
set(args)
foreach(isa generic avx2 avx512)
  set(${isa}_objects)
endforeach()
foreach(o IN LISTS objects)
  if(o MATCHES "synapse_kernels_avx512\\.dir")
    list(APPEND avx512_objects ${o})
  elseif(o MATCHES "synapse_kernels_avx2\\.dir")
    list(APPEND avx2_objects ${o})
  elseif(o MATCHES "synapse(_kernels_generic)?\\.dir")
    list(APPEND generic_objects ${o})
  endif()
endforeach()
# Functions with their own target attribute and run-time check are allowed wide instructions: the FMA
# peak loops (core/peak.cpp) and the bf16 GEMM (gemm_bf16.cpp, a target region of internal functions).
# Weak functions never are, and no global function of a generic object: a -m flag would show there.
execute_process(COMMAND ${PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_isa_objects.py
                        --allow "chains_(256|512)|bf16|synapse::cpu::\\(anonymous namespace\\)::"
                        --generic ${generic_objects}
                        --avx2 ${avx2_objects} --avx512 ${avx512_objects}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "portable build: wide instructions outside the dispatched kernels")
endif()

set(ran "")
foreach(isa generic avx2 avx512)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env SYNAPSE_ISA=${isa} ${WORK_DIR}/tests/test_ops --gtest_brief=1
                          --gtest_filter=${FILTER}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 77)
    message(STATUS "portable build: ${isa}: not supported by this CPU, skipped")
  elseif(NOT rc EQUAL 0)
    message(FATAL_ERROR "portable build: the kernel tests failed with SYNAPSE_ISA=${isa}:\n${out}")
  else()
    string(APPEND ran " ${isa}")
  endif()
endforeach()
message(STATUS "portable build: kernel tests passed on:${ran}")

if(NOT SANITIZE)
  return()
endif()
# The gtest binaries of UNIT_TESTS under the sanitizers, two at a time (unit tests only: the long end-to-end
# trainings and the command-line drivers stay out; tests/CMakeLists.txt lists what is skipped and why).
execute_process(COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_sanitized.sh 2 ${WORK_DIR}/sanitized-logs ${binaries}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sanitizer build: unit tests failed under ${SANITIZE} (above)")
endif()
# Every fuzz target's committed corpus (seeds and regressions).
execute_process(COMMAND ${WORK_DIR}/fuzz/fuzz_replay --list OUTPUT_VARIABLE names)
string(REPLACE "\n" ";" names "${names}")
foreach(t IN LISTS names)
  if(t STREQUAL "")
    continue()
  endif()
  execute_process(COMMAND ${WORK_DIR}/fuzz/fuzz_replay ${t} ${SOURCE_DIR}/fuzz/corpus/${t}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "sanitizer build: the corpus of fuzz target ${t} failed under ${SANITIZE}:\n${out}${err}")
  endif()
  message(STATUS "sanitizer build: ${out}")
endforeach()
