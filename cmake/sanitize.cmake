# Sanitizer and fuzzing builds (README, "Reliability").
#   -DSYNAPSE_SANITIZE=address,undefined   every target with ASan + UBSan (LeakSanitizer comes with ASan);
#                                          GCC or clang. A UBSan report stops the program (no recovery).
#   -DSYNAPSE_SANITIZE=leak                LeakSanitizer alone (no ASan: cheaper, finds leaks only).
#   -DSYNAPSE_SANITIZE=thread              ThreadSanitizer (use with -DSYNAPSE_WITH_OPENMP=OFF: libgomp is
#                                          not instrumented, so OpenMP regions give false reports).
#   -DSYNAPSE_FUZZ=ON                      clang only: the library instrumented for libFuzzer
#                                          (-fsanitize=fuzzer-no-link) and one libFuzzer binary per target in fuzz/.
# The installed package of a sanitized build carries -fsanitize=... in synapse::synapse's link options
# (synapse_sanitize_export below): a find_package(synapse) consumer then links the same sanitizer runtime,
# which must come first in the process (ASan refuses to start otherwise).
set(SYNAPSE_SANITIZE "" CACHE STRING
  "Sanitizers for every target: a list of address, undefined, leak, thread (e.g. address,undefined; empty: none)")
if(SYNAPSE_SANITIZE)
  string(REPLACE "," ";" sanitizers "${SYNAPSE_SANITIZE}")
  foreach(s IN LISTS sanitizers)
    if(NOT s MATCHES "^(address|undefined|leak|thread)$")
      message(FATAL_ERROR "SYNAPSE_SANITIZE=${SYNAPSE_SANITIZE}: unknown sanitizer '${s}' "
                          "(expected a comma-separated list of address, undefined, leak, thread)")
    endif()
  endforeach()
  if("thread" IN_LIST sanitizers AND ("address" IN_LIST sanitizers OR "leak" IN_LIST sanitizers))
    message(FATAL_ERROR "SYNAPSE_SANITIZE=${SYNAPSE_SANITIZE}: thread cannot be combined with address or leak "
                        "(expected address,undefined or thread or thread,undefined)")
  endif()
  string(REPLACE ";" "," SYNAPSE_SANITIZE_FLAGS "${sanitizers}")
  # No recovery: a UBSan report stops the program (ASan never recovers without -fsanitize-recover=address).
  add_compile_options(-fsanitize=${SYNAPSE_SANITIZE_FLAGS} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${SYNAPSE_SANITIZE_FLAGS})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12's middle end warns about the instrumented code (ASan at -O3: std::regex's std::function states
    # "may be used uninitialized" in nn/module.cpp); the warning is kept in normal builds.
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
  message(STATUS "Sanitizers: ${SYNAPSE_SANITIZE_FLAGS}")
endif()
# The library's exported link options: called once synapse exists (top-level CMakeLists.txt).
function(synapse_sanitize_export target)
  if(SYNAPSE_SANITIZE_FLAGS)
    target_link_options(${target} INTERFACE $<INSTALL_INTERFACE:-fsanitize=${SYNAPSE_SANITIZE_FLAGS}>)
  endif()
endfunction()
option(SYNAPSE_FUZZ "Build the libFuzzer targets of fuzz/ (needs clang)" OFF)
if(SYNAPSE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SYNAPSE_FUZZ=ON needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
