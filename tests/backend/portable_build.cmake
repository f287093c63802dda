# The portable build (-DSYNAPSE_NATIVE=OFF), checked from the test suite:
#   1. configures a sub-build of the library and test_ops only (no examples; ONNX only in the sanitizer build), with the parent
#      build's compiler launcher (ccache) so a second run recompiles nothing;
#   2. checks its objects with check_isa_objects.py: no ymm/zmm instruction in any object of the
#      library except the avx2 / avx512 kernel copies, and none in their weak functions;
#   3. runs the kernel tests of test_ops under SYNAPSE_ISA set to each path this CPU supports.
# With -DSANITIZE=address,undefined (what tests/CMakeLists.txt passes by default) the same sub-build is also
# the sanitizer build (README, "Reliability"): compiled by clang-14 (GCC when it is missing), everything at
# -O1 -g1 except the per-ISA kernel copies (-O3: the kernel tests run them on every path), with
# AddressSanitizer and UBSan; the object check and the kernel tests above run on those objects, then the
# gtest binaries of UNIT_TESTS (LeakSanitizer on), every fuzz target's corpus through fuzz_replay, and 2,000
# blind mutations of each corpus.
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
set(compilers)
set(onnx OFF)  # the plain portable build checks the kernels only; the sanitizer build runs the ONNX tests too
if(SANITIZE)
  set(onnx ON)
  set(test_flags "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG")
  # clang compiles the instrumented code ~4.7x faster than GCC 12 (io/keras.cpp with ASan + UBSan at -O3:
  # 17.8 s against 83.7 s; plain, both take ~10.5 s). GCC when clang-14 is not installed.
  find_program(CLANGXX clang++-14)
  find_program(CLANGC clang-14)
  if(CLANGXX AND CLANGC)
    set(compilers -DCMAKE_CXX_COMPILER=${CLANGXX} -DCMAKE_C_COMPILER=${CLANGC})
  endif()
endif()
if(LAUNCHER)
  set(launch -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER} -DCMAKE_C_COMPILER_LAUNCHER=${LAUNCHER})
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR} -DCMAKE_BUILD_TYPE=Release -DSYNAPSE_NATIVE=OFF
          -DSYNAPSE_BUILD_TESTS=ON -DSYNAPSE_BUILD_EXAMPLES=OFF -DSYNAPSE_WITH_ONNX=${onnx} -DSYNAPSE_WERROR=ON ${launch}
          -DSYNAPSE_SANITIZE=${SANITIZE} ${compilers} ${test_flags}
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
    list(APPEND binaries ${t})
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
# Each binary where CMake put it (tests/, tests/graph/, tests/onnx/, tests/report/, fuzz/, ...).
set(paths)
foreach(spec IN LISTS binaries)
  string(REGEX REPLACE ":.*" "" name "${spec}")
  string(REGEX REPLACE "^[^:]+" "" filter "${spec}")
  file(GLOB_RECURSE found LIST_DIRECTORIES false ${WORK_DIR}/tests/${name} ${WORK_DIR}/fuzz/${name})
  list(FILTER found INCLUDE REGEX "/${name}$")
  if(NOT found)
    message(FATAL_ERROR "sanitizer build: no test binary ${name} under ${WORK_DIR}/tests or ${WORK_DIR}/fuzz")
  endif()
  list(GET found 0 path)
  list(APPEND paths "${path}${filter}")
endforeach()
execute_process(COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_sanitized.sh 2 ${WORK_DIR}/sanitized-logs ${paths}
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
  # Then 2,000 blind mutations of that corpus (fuzz_replay --mutate: bit flips, interesting integers, cuts,
  # splices; a fixed seed, so the same inputs every run) under the sanitizers: the smoke run of the targets
  # that fuzz_smoke's libFuzzer build leaves out (onnx, serve, keras and cifar need the whole library) and a
  # second mutation engine for the others. A finding leaves its input as ${WORK_DIR}/mutate/fuzz-finding-NAME.
  file(MAKE_DIRECTORY ${WORK_DIR}/mutate)
  execute_process(COMMAND ${WORK_DIR}/fuzz/fuzz_replay ${t} ${SOURCE_DIR}/fuzz/corpus/${t} --mutate 2000 --seed 1
                  WORKING_DIRECTORY ${WORK_DIR}/mutate RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "sanitizer build: mutating the corpus of fuzz target ${t} found a bug under ${SANITIZE} "
                        "(input: ${WORK_DIR}/mutate/fuzz-finding-${t} or fuzz-current-${t}):\n${out}${err}")
  endif()
  message(STATUS "sanitizer build: ${out}")
endforeach()
