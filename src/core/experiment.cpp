#include "core/experiment.h"

#include <atomic>

namespace synapse::dev {
namespace {
std::atomic<int> g_variant{0};
}  // namespace

int experiment() { return g_variant.load(std::memory_order_relaxed); }
void set_experiment(int variant) { g_variant.store(variant, std::memory_order_relaxed); }

}  // namespace synapse::dev
