# Reliability (README, "Reliability"): size budgets, crash safety under kill -9 and full disks, the bad-input
# catalogue. The fuzz targets' corpus replays are in fuzz/CMakeLists.txt.
synapse_test(test_reliability reliability/test_budget.cpp)
target_link_libraries(test_reliability PRIVATE ZLIB::ZLIB)
# kill -9 at seeded random moments of a short training run with --checkpoint-every, resuming each time, then a
# full disk (RLIMIT_FSIZE) during a checkpoint save.
add_test(NAME crash_safety_kill9_and_full_disk
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/reliability/crash_safety.py $<TARGET_FILE:synapse_cli>
          ${PROJECT_SOURCE_DIR}/data/mnist ${CMAKE_CURRENT_BINARY_DIR}/crash_safety)
set_tests_properties(crash_safety_kill9_and_full_disk PROPERTIES LABELS "integration;reliability" SKIP_RETURN_CODE 77)
# The bad-input catalogue: every case's exact message and non-zero exit (bad_inputs.py lists them).
add_executable(read_probe reliability/read_probe.cpp)
target_link_libraries(read_probe PRIVATE synapse synapse_warnings)
add_test(NAME bad_input_catalogue
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/reliability/bad_inputs.py $<TARGET_FILE:synapse_cli>
          $<TARGET_FILE:read_probe> ${PROJECT_SOURCE_DIR}/data/mnist ${CMAKE_CURRENT_BINARY_DIR}/bad_inputs)
set_tests_properties(bad_input_catalogue PROPERTIES LABELS "cli;reliability" SKIP_RETURN_CODE 77)
