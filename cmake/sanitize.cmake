# Sanitizer and fuzzing builds (README, "Reliability").
#   -DSYNAPSE_SANITIZE=address,undefined   every target with ASan + UBSan (LeakSanitizer comes with ASan);
#                                          GCC or clang. A UBSan report stops the program (no recovery).
#   -DSYNAPSE_SANITIZE=thread              ThreadSanitizer (use with -DSYNAPSE_WITH_OPENMP=OFF: libgomp is
#                                          not instrumented, so OpenMP regions give false reports).
#   -DSYNAPSE_FUZZ=ON                      clang only: the library instrumented for libFuzzer
#                                          (-fsanitize=fuzzer-no-link) and one libFuzzer binary per target in fuzz/.
set(SYNAPSE_SANITIZE "" CACHE STRING "Sanitizers for every target, e.g. address,undefined or thread (empty: none)")
option(SYNAPSE_FUZZ "Build the libFuzzer targets of fuzz/ (needs clang)" OFF)
if(SYNAPSE_SANITIZE)
  add_compile_options(-fsanitize=${SYNAPSE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${SYNAPSE_SANITIZE})
endif()
if(SYNAPSE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SYNAPSE_FUZZ=ON needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
