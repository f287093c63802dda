// Ends the target region started by isa_begin.h.
#pragma GCC diagnostic pop
#pragma GCC pop_options
