// The CPU's instruction sets and the kernel path in use (runtime dispatch).
//
// The hot CPU kernels (gemm.cpp, conv*.cpp, pool.cpp) are compiled once per path: generic (the
// build's baseline, SSE2 on x86-64), avx2 (x86-64-v3: AVX2, FMA, F16C, BMI2) and avx512 (AVX-512
// F/BW/VL/DQ), each copy in its own namespace (synapse::cpu::generic, ::avx2, ::avx512). Their public
// entry points (conv2d_forward, gemm, max_pool2d, ...) pick the copy of the active path, decided once:
// the best path this CPU supports, or the one named by the environment variable SYNAPSE_ISA
// (generic|avx2|avx512), or set_isa() (tests, benchmarks). See kernel_isa.h for how a kernel file is
// compiled per path and how to add one.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace synapse::cpu {

// Kernel paths, from the most portable to the widest.
enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

// What cpuid (and the OS, via XGETBV) reports.
struct CpuInfo {
  std::string vendor;  // "AuthenticAMD", "GenuineIntel", ... ("" off x86)
  std::string model;   // the brand string, e.g. "AMD EPYC 9R14 96-Core Processor"
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx512_bf16 = false;
  // AMX: the CPU has it and the OS enabled its state in XCR0. A process must still ask Linux for the
  // tile data (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) before its first tile instruction;
  // no kernel here uses AMX yet.
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  // Data cache sizes in bytes, per core for L1d and L2, per cluster for L3 (0 when unknown).
  std::int64_t l1d = 0, l2 = 0, l3 = 0;
};

// Probed once.
const CpuInfo& cpu_info();

// "generic", "avx2", "avx512".
const char* isa_name(Isa isa);
// What a path needs, e.g. "AVX2+FMA+F16C+BMI2, 8 floats per vector".
const char* isa_description(Isa isa);
// The paths compiled into this build and supported by this CPU, generic first.
std::vector<Isa> supported_isas();
bool isa_supported(Isa isa);
// The widest supported path.
Isa best_isa();

// The path the kernels use. The first call reads SYNAPSE_ISA (when set) and throws synapse::Error
// naming the value and the supported paths if it is unknown or unsupported here; without it, the best.
Isa active_isa();
// Switches every kernel to `isa` (tests and benchmarks; not while kernels run on other threads).
// Throws synapse::Error when this CPU or build does not support it.
void set_isa(Isa isa);
// "avx2" -> Isa::avx2; throws synapse::Error naming `what` (e.g. "SYNAPSE_ISA") and the known paths.
Isa parse_isa(std::string_view name, std::string_view what = "SYNAPSE_ISA");

// One paragraph for `synapse --version`: CPU model, instruction sets, caches, the kernel path.
std::string cpu_report();

// The dispatcher of a kernel entry point: the copy for the active path. Cheap after the first call
// (one relaxed atomic load).
namespace detail {
extern int active_isa_cache;  // -1 until the first active_isa()
}
template <class F> F* pick_isa(F* generic, F* avx2, F* avx512) {
  const int a = __atomic_load_n(&detail::active_isa_cache, __ATOMIC_RELAXED);
  switch (a >= 0 ? static_cast<Isa>(a) : active_isa()) {
    case Isa::avx512: return avx512;
    case Isa::avx2: return avx2;
    default: return generic;
  }
}

}  // namespace synapse::cpu
