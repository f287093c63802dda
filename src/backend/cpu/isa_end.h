// Ends the target region started by isa_begin.h.
#pragma GCC diagnostic pop
#pragma GCC pop_options
#ifdef SYNAPSE_CLANG_ISA_REGION
#pragma clang attribute pop
#endif
