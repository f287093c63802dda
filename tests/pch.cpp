// The host of the tests' precompiled header (tests/CMakeLists.txt, synapse_test_pch): GoogleTest and
// synapse/synapse.h, parsed once for every test binary. This file only gives the target a source; linked
// with gtest_main, the binary runs no test.
