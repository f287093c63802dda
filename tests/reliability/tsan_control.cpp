// scripts/tsan's control: an OpenMP loop with a planted data race (sum += i from 4 threads, no reduction).
// scripts/tsan builds it with the same clang, flags and OpenMP tool (Archer) as the library and requires
// ThreadSanitizer to report it before trusting a clean run of test_threads; with -DNO_RACE (a reduction) it
// must report nothing, so the OpenMP runtime's own synchronisation is known not to be reported either.
#include <cstdio>

int main() {
  int sum = 0;
#ifdef NO_RACE
#pragma omp parallel for num_threads(4) reduction(+ : sum)
#else
#pragma omp parallel for num_threads(4)
#endif
  for (int i = 0; i < 1000; ++i) sum += i;
  std::printf("%d\n", sum);
  return 0;
}
