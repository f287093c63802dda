// The transport under dist.h: a handful of non-blocking collectives and a deadline wait. comm_mpi.cpp
// implements it with MPI, comm_stub.cpp for one process (every collective the identity).
#pragma once
#include <cstdint>
#include <string>

namespace synapse::dist::comm {

// The element types a reduction adds (the library's DType has no float64; the metrics need it).
enum class Elem { F32, F64, I32, I64 };

bool available();
// Starts MPI when launched by mpirun; returns whether it is running. Idempotent.
bool init(int* argc, char*** argv);
bool active();
int rank();
int size();
void finalize();
[[noreturn]] void abort(int code);

// Non-blocking collectives on the library's own communicator; each returns a request id for wait().
// Sums `count` elements of type `elem` over the ranks, in place.
int iallreduce_sum(void* data, std::int64_t count, Elem elem);
int ibroadcast(void* data, std::int64_t bytes, int root);
int ibarrier();
// Gathers `bytes` from every rank into `out` (size() * bytes), in rank order.
int iallgather(const void* in, std::int64_t bytes, void* out);
// Completes a request. Polls it until SYNAPSE_DIST_TIMEOUT seconds have passed, then throws an Error
// naming `what`, this rank and the timeout (the request stays pending: abort() afterwards).
void wait(int request, const std::string& what);
// Lets MPI progress a request without waiting (OpenMPI advances non-blocking collectives only inside
// MPI calls); returns whether it has completed (wait() must still be called once).
bool progress(int request);

}  // namespace synapse::dist::comm
