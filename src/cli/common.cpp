#include <charconv>
#include <cmath>
#include <filesystem>

#include "cli/commands.h"
#include "core/check.h"

namespace synapse::cli {
namespace {

// A real-number check: parses the whole value (so "nan", "inf" and "1e400" are seen as what they are)
// and refuses what `allowed` rejects, describing the allowed values as `what`.
CLI::Validator number_check(bool (*allowed)(double), const std::string& what) {
  return CLI::Validator(
      [allowed, what](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || end != value.c_str() + value.size()) return "'" + value + "' is not a number";
        if (!allowed(v)) return "Value " + value + " is not " + what;
        return {};
      },
      what);
}

}  // namespace

CLI::Validator positive_number() {
  return number_check([](double v) { return std::isfinite(v) && v > 0; }, "a finite number > 0");
}

CLI::Validator non_negative_number() {
  return number_check([](double v) { return std::isfinite(v) && v >= 0; }, "a finite number >= 0");
}

void add_precision_option(CLI::App* sub, std::string& value, const std::string& what) {
  sub->add_option("--precision", value,
                  "Matrix products " + what +
                      " in fp32 or bf16 (bf16 operands, fp32 accumulation; needs a CPU with AVX512-BF16)")
      ->capture_default_str();
}

MatmulPrecision precision_flag(const std::string& value) { return parse_precision(value, "--precision"); }

CLI::Validator integer_in(std::int64_t min, std::int64_t max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < min || v > max)
          return fmt::format("Value {} is not an integer from {} to {}", value, min, max);
        return {};
      },
      fmt::format("INT in [{} - {}]", min, max));
}

CLI::Validator unsigned_integer() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (value.empty() || ec != std::errc() || end != value.data() + value.size())
          return "Value " + value + " is not an integer from 0 to 18446744073709551615";
        return {};
      },
      "UINT");
}

void add_lm_train_options(CLI::App* sub, apps::LmTrainOptions& o, std::int64_t& seq_len) {
  sub->add_option("--logdir", o.logdir, "Run folder: model.syn, checkpoints, metrics, TensorBoard logs")
      ->capture_default_str();
  sub->add_option("--epochs", o.epochs, "Epochs")->capture_default_str()->check(integer_in(1, 100000));
  sub->add_option("--batch", o.batch, "Sequences per batch")->capture_default_str()->check(integer_in(1, 100000));
  sub->add_option("--seq-len", seq_len, "Steps per sequence (longer ones are cut)")->capture_default_str()
      ->check(integer_in(1, 100000));
  sub->add_option("--lr", o.lr, "Adam learning rate")->capture_default_str()->check(positive_number());
  sub->add_option("--seed", o.seed, "Random seed (initialisation, shuffling)")->capture_default_str()->check(unsigned_integer());
  sub->add_option("--steps", o.max_steps, "Stop after this many steps (0: no limit)")->capture_default_str()
      ->check(integer_in(0, std::int64_t{1} << 40));
  sub->add_option("--minutes", o.minutes, "Stop after this many minutes of training (0: no limit)")->capture_default_str()
      ->check(non_negative_number());
  sub->add_option("--embed", o.model.embed, "Embedding size")->capture_default_str()
      ->check(integer_in(1, 8192));
  sub->add_option("--units", o.model.units, "Units per LSTM layer")->capture_default_str()
      ->check(integer_in(1, 8192));
}

void add_sample_options(CLI::App* sub, apps::SampleOptions& o) {
  sub->add_option("--temperature", o.temperature, "Sampling temperature, above 0 (lower: safer choices)")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--top-k", o.top_k, "Draw only among the K likeliest characters (default: all)")
      ->check(integer_in(1, 1000000));
  sub->add_option("--seed", o.seed, "Random seed of the sampling")->capture_default_str()->check(unsigned_integer());
}

}  // namespace synapse::cli
