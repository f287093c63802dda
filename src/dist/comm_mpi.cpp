// The transport over MPI (OpenMPI on Debian). Every collective is non-blocking (MPI_I*) and completed
// by wait(), which polls MPI_Test against a deadline: a rank that dies or hangs makes the others fail
// with a message instead of waiting forever. Errors are returned (MPI_ERRORS_RETURN on the library's
// communicator, a duplicate of MPI_COMM_WORLD) and become Errors naming the call.
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/check.h"
#include "dist/comm.h"
#include "synapse/dist.h"

namespace synapse::dist::comm {
namespace {

MPI_Comm g_comm = MPI_COMM_NULL;
bool g_started = false;  // we called MPI_Init_thread (so we finalize)
bool g_finalized = false;
int g_rank = 0, g_size = 1;
std::vector<MPI_Request> g_requests;  // by request id; MPI_REQUEST_NULL = free
std::vector<std::string> g_labels;

std::string mpi_error(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return std::string(text, static_cast<std::size_t>(len));
}

void check(int rc, const char* call) {
  SYN_CHECK(rc == MPI_SUCCESS, "dist: rank {} of {}: {} failed: {}", g_rank, g_size, call, mpi_error(rc));
}

MPI_Datatype mpi_type(Elem e) {
  switch (e) {
    case Elem::F32: return MPI_FLOAT;
    case Elem::F64: return MPI_DOUBLE;
    case Elem::I32: return MPI_INT32_T;
    case Elem::I64: return MPI_INT64_T;
  }
  return MPI_DATATYPE_NULL;
}

int checked_count(std::int64_t n, const char* what) {
  SYN_CHECK(n >= 0 && n <= std::int64_t{2147483647}, "dist: {} of {} elements: MPI counts stop at 2^31 - 1", what, n);
  return static_cast<int>(n);
}

int add_request(MPI_Request r) {
  for (std::size_t i = 0; i < g_requests.size(); ++i)
    if (g_requests[i] == MPI_REQUEST_NULL) {
      g_requests[i] = r;
      return static_cast<int>(i);
    }
  g_requests.push_back(r);
  return static_cast<int>(g_requests.size() - 1);
}

void require_active(const char* what) {
  SYN_CHECK(g_comm != MPI_COMM_NULL, "dist: {} after dist::finalize()", what);
}

}  // namespace

bool available() { return true; }

bool init(int* argc, char*** argv) {
  if (g_comm != MPI_COMM_NULL) return true;
  if (g_finalized || !launched_by_mpirun()) return false;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    g_started = true;
  }
  check(MPI_Comm_dup(MPI_COMM_WORLD, &g_comm), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(g_comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(g_comm, &g_rank);
  MPI_Comm_size(g_comm, &g_size);
  return true;
}

bool active() { return g_comm != MPI_COMM_NULL; }
int rank() { return g_rank; }
int size() { return g_size; }

void finalize() {
  if (g_comm == MPI_COMM_NULL) return;
  MPI_Comm_free(&g_comm);
  g_comm = MPI_COMM_NULL;
  g_finalized = true;
  g_rank = 0;
  g_size = 1;
  if (g_started) MPI_Finalize();
}

void abort(int code) {
  if (g_comm != MPI_COMM_NULL || g_started) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

int iallreduce_sum(void* data, std::int64_t count, Elem elem) {
  require_active("allreduce");
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Iallreduce(MPI_IN_PLACE, data, checked_count(count, "allreduce"), mpi_type(elem), MPI_SUM, g_comm, &r),
        "MPI_Iallreduce");
  return add_request(r);
}

int ibroadcast(void* data, std::int64_t bytes, int root) {
  require_active("broadcast");
  SYN_CHECK(root >= 0 && root < g_size, "dist: broadcast from rank {}, but there are {} ranks", root, g_size);
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Ibcast(data, checked_count(bytes, "broadcast"), MPI_BYTE, root, g_comm, &r), "MPI_Ibcast");
  return add_request(r);
}

int ibarrier() {
  require_active("barrier");
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(g_comm, &r), "MPI_Ibarrier");
  return add_request(r);
}

int iallgather(const void* in, std::int64_t bytes, void* out) {
  require_active("allgather");
  MPI_Request r = MPI_REQUEST_NULL;
  const int n = checked_count(bytes, "allgather");
  check(MPI_Iallgather(in, n, MPI_BYTE, out, n, MPI_BYTE, g_comm, &r), "MPI_Iallgather");
  return add_request(r);
}

void wait(int request, const std::string& what) {
  SYN_CHECK(request >= 0 && static_cast<std::size_t>(request) < g_requests.size(), "dist: wait on unknown request {}",
            request);
  MPI_Request& r = g_requests[static_cast<std::size_t>(request)];
  const double limit = timeout_seconds();
  const auto start = std::chrono::steady_clock::now();
  for (long polls = 0;; ++polls) {
    int done = 0;
    check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;  // MPI_Test set r to MPI_REQUEST_NULL: the id is free again
    // Spin (each MPI_Test advances the reduction's rounds), yielding the core so that with more
    // ranks than cores (mpirun --oversubscribe) the rank we wait for can run; after a long wait,
    // sleep between polls.
    if (polls > 200000) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else if (polls > 100) {
      std::this_thread::yield();
    }
    if ((polls & 63) == 0) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      SYN_CHECK(waited < limit,
                "dist: rank {} of {}: {} did not finish within {:g} s (SYNAPSE_DIST_TIMEOUT): another rank has "
                "probably died, hung or stopped training early",
                g_rank, g_size, what, limit);
    }
  }
}

bool progress(int request) {
  if (request < 0 || static_cast<std::size_t>(request) >= g_requests.size()) return true;
  MPI_Request& r = g_requests[static_cast<std::size_t>(request)];
  if (r == MPI_REQUEST_NULL) return true;
  // MPI_Test would free a completed request (and its id); MPI_Request_get_status only looks, and
  // still lets MPI make progress.
  int done = 0;
  check(MPI_Request_get_status(r, &done, MPI_STATUS_IGNORE), "MPI_Request_get_status");
  return done != 0;
}

}  // namespace synapse::dist::comm
