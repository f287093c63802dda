// A rank that leaves the job: `dead_rank exit` (the last rank exits right away, without finalize) or
// `dead_rank hang` (it sleeps instead of taking part). The others run a training-like loop of
// allreduces; they must end with a message, never wait forever (ctest checks the output and the time).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "synapse/dist.h"
#include "synapse/error.h"

using namespace synapse;

int main(int argc, char** argv) {
  dist::init(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "exit";
  if (dist::size() < 2) {
    std::printf("dead_rank: needs mpirun -np 2 or more\n");
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (dist::rank() == dist::size() - 1) {
    if (mode == "exit") std::_Exit(3);
    std::this_thread::sleep_for(std::chrono::seconds(30));
    std::_Exit(0);
  }
  try {
    Tensor t = Tensor::empty({1000});
    for (int step = 0; step < 1000000; ++step) dist::allreduce_(t);
    std::printf("dead_rank: the loop ended without an error\n");
  } catch (const Error& e) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "dead_rank: rank %d failed after %.1f s: %s\n", dist::rank(), s, e.what());
    std::fflush(stderr);
    dist::abort(2);
  }
  return 1;
}
