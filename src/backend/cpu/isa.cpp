#include "backend/cpu/isa.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "synapse/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SYNAPSE_X86 1
#else
#define SYNAPSE_X86 0
#endif

namespace synapse::cpu {

namespace detail {
int active_isa_cache = -1;
}

namespace {

#if SYNAPSE_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};
Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) r = {};
  return r;
}
bool bit(unsigned v, int i) { return ((v >> i) & 1u) != 0; }
// The state components the OS saves on a context switch (XCR0); only valid when OSXSAVE is set.
std::uint64_t xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

// Deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD), same layout.
void cpuid_caches(CpuInfo& info, unsigned leaf) {
  for (unsigned i = 0; i < 16; ++i) {
    const Regs r = cpuid(leaf, i);
    const unsigned type = r.a & 0x1f;
    if (type == 0) break;
    const unsigned level = (r.a >> 5) & 0x7;
    const std::int64_t ways = ((r.b >> 22) & 0x3ff) + 1, parts = ((r.b >> 12) & 0x3ff) + 1,
                       line = (r.b & 0xfff) + 1, sets = static_cast<std::int64_t>(r.c) + 1;
    const std::int64_t size = ways * parts * line * sets;
    if (level == 1 && type == 1) info.l1d = size;
    if (level == 2 && type != 2) info.l2 = size;
    if (level == 3 && type != 2) info.l3 = size;
  }
}
#endif

// "48K" / "1024K" / "32M" from sysfs.
std::int64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  std::int64_t v = std::strtoll(s.c_str(), nullptr, 10);
  if (s.find('K') != std::string::npos) v <<= 10;
  if (s.find('M') != std::string::npos) v <<= 20;
  return v;
}

void sysfs_caches(CpuInfo& info) {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/", i);
    std::ifstream level_file(dir + "level"), type_file(dir + "type"), size_file(dir + "size");
    int level = 0;
    std::string type, size;
    if (!(level_file >> level) || !(type_file >> type) || !(size_file >> size)) break;
    if (type == "Instruction") continue;
    const std::int64_t bytes = parse_size(size);
    if (level == 1) info.l1d = bytes;
    if (level == 2) info.l2 = bytes;
    if (level == 3) info.l3 = bytes;
  }
}

CpuInfo probe() {
  CpuInfo info;
#if SYNAPSE_X86
  const Regs v = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor, &v.b, 4);
  std::memcpy(vendor + 4, &v.d, 4);
  std::memcpy(vendor + 8, &v.c, 4);
  info.vendor = vendor;
  const unsigned max_leaf = v.a;
  const unsigned max_ext = cpuid(0x80000000).a;
  if (max_ext >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    info.model = brand;
    const auto first = info.model.find_first_not_of(' '), last = info.model.find_last_not_of(' ');
    info.model = first == std::string::npos ? "" : info.model.substr(first, last - first + 1);
  }
  const Regs l1 = cpuid(1);
  const bool osxsave = bit(l1.c, 27);
  const std::uint64_t xcr = osxsave ? xcr0() : 0;
  const bool ymm_state = (xcr & 0x6) == 0x6;              // SSE and AVX registers
  const bool zmm_state = ymm_state && (xcr & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const bool tile_state = (xcr & 0x60000) == 0x60000;     // XTILECFG, XTILEDATA
  const bool avx = bit(l1.c, 28) && ymm_state;
  info.fma = avx && bit(l1.c, 12);
  info.f16c = avx && bit(l1.c, 29);
  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    info.avx2 = avx && bit(l7.b, 5);
    info.bmi2 = bit(l7.b, 8);
    info.avx512f = zmm_state && bit(l7.b, 16);
    info.avx512dq = info.avx512f && bit(l7.b, 17);
    info.avx512bw = info.avx512f && bit(l7.b, 30);
    info.avx512vl = info.avx512f && bit(l7.b, 31);
    info.avx512_vnni = info.avx512f && bit(l7.c, 11);
    info.amx_bf16 = tile_state && bit(l7.d, 22);
    info.amx_tile = tile_state && bit(l7.d, 24);
    info.amx_int8 = tile_state && bit(l7.d, 25);
    if (l7.a >= 1) info.avx512_bf16 = info.avx512f && bit(cpuid(7, 1).a, 5);
  }
  if (info.vendor == "GenuineIntel" && max_leaf >= 4) cpuid_caches(info, 4);
  if (info.vendor == "AuthenticAMD" && max_ext >= 0x8000001D) cpuid_caches(info, 0x8000001D);
#endif
  if (info.l1d == 0 || info.l2 == 0) sysfs_caches(info);
  return info;
}

// Which paths this build compiled (the per-ISA copies exist only on x86-64).
bool compiled(Isa isa) {
#if defined(__x86_64__)
  (void)isa;
  return true;
#else
  return isa == Isa::generic;
#endif
}

std::string names(const std::vector<Isa>& list) {
  std::string s;
  for (const Isa i : list) {
    if (!s.empty()) s += ", ";
    s += isa_name(i);
  }
  return s;
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = probe();
  return info;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

const char* isa_description(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "AVX-512 F/BW/VL/DQ + FMA, 16 floats per vector";
    case Isa::avx2: return "AVX2 + FMA + F16C + BMI2 (x86-64-v3), 8 floats per vector";
    default: return "the build's baseline instructions, no hand-written vector code";
  }
}

bool isa_supported(Isa isa) {
  if (!compiled(isa)) return false;
  const CpuInfo& c = cpu_info();
  const bool v3 = c.avx2 && c.fma && c.f16c && c.bmi2;
  switch (isa) {
    case Isa::avx512: return v3 && c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq;
    case Isa::avx2: return v3;
    default: return true;
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (const Isa i : {Isa::generic, Isa::avx2, Isa::avx512})
    if (isa_supported(i)) out.push_back(i);
  return out;
}

Isa best_isa() { return supported_isas().back(); }

Isa parse_isa(std::string_view name, std::string_view what) {
  for (const Isa i : {Isa::generic, Isa::avx2, Isa::avx512})
    if (name == isa_name(i)) return i;
  throw Error(fmt::format("{}={}: unknown kernel path (expected one of generic, avx2, avx512; this CPU supports {})",
                          what, name, names(supported_isas())));
}

void set_isa(Isa isa) {
  if (!isa_supported(isa))
    throw Error(fmt::format("kernel path {} is not supported {} (supported: {})", isa_name(isa),
                            compiled(isa) ? "by this CPU" : "by this build", names(supported_isas())));
  __atomic_store_n(&detail::active_isa_cache, static_cast<int>(isa), __ATOMIC_RELAXED);
}

Isa active_isa() {
  const int cached = __atomic_load_n(&detail::active_isa_cache, __ATOMIC_RELAXED);
  if (cached >= 0) return static_cast<Isa>(cached);
  Isa isa = best_isa();
  if (const char* env = std::getenv("SYNAPSE_ISA"); env != nullptr && *env != '\0') {
    isa = parse_isa(env);
    if (!isa_supported(isa))
      throw Error(fmt::format("SYNAPSE_ISA={}: this {} does not support that kernel path (supported: {})", env,
                              compiled(isa) ? "CPU" : "build", names(supported_isas())));
  }
  __atomic_store_n(&detail::active_isa_cache, static_cast<int>(isa), __ATOMIC_RELAXED);
  return isa;
}

std::string cpu_report() {
  const CpuInfo& c = cpu_info();
  const std::pair<bool, const char*> flags[] = {
      {c.avx2, "avx2"},         {c.fma, "fma"},           {c.f16c, "f16c"},
      {c.bmi2, "bmi2"},         {c.avx512f, "avx512f"},   {c.avx512bw, "avx512bw"},
      {c.avx512vl, "avx512vl"}, {c.avx512dq, "avx512dq"}, {c.avx512_vnni, "avx512_vnni"},
      {c.avx512_bf16, "avx512_bf16"}, {c.amx_tile, "amx_tile"}, {c.amx_bf16, "amx_bf16"},
      {c.amx_int8, "amx_int8"}};
  std::string isas;
  for (const auto& [has, name] : flags) {
    if (!has) continue;
    if (!isas.empty()) isas += ' ';
    isas += name;
  }
  std::string path;
  try {
    const Isa active = active_isa();
    path = fmt::format("{} ({}){}", isa_name(active), isa_description(active),
                       std::getenv("SYNAPSE_ISA") != nullptr ? ", set by SYNAPSE_ISA" : "");
  } catch (const Error& e) {
    path = fmt::format("none: {}", e.what());
  }
  return fmt::format(
      "cpu: {}\n"
      "instruction sets: {}\n"
      "caches: L1d {} KiB, L2 {} KiB, L3 {} MiB\n"
      "kernel paths: {} (supported here)\n"
      "kernel path in use: {}\n",
      c.model.empty() ? "unknown" : c.model, isas.empty() ? "baseline only" : isas, c.l1d >> 10, c.l2 >> 10,
      c.l3 >> 20, names(supported_isas()), path);
}

}  // namespace synapse::cpu
