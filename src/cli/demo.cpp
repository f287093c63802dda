// synapse demo NAME: the tutorials' small tabular lessons (apps::run_demo, synapse/tabular.h).
#include "cli/commands.h"
#include "core/check.h"
#include "synapse/tabular.h"

namespace synapse::cli {
namespace {

struct DemoArgs {
  std::string name, csv;
  std::uint64_t seed = 0;
};

int run_demo(const DemoArgs& a) {
  if (!a.csv.empty()) {
    SYN_CHECK(a.name == "premium", "--csv: only the premium demo has a table to write, not '{}'", a.name);
    data::write_table(a.csv, apps::premium_members(2000, a.seed));
    fmt::print("wrote the premium demo's 2000 customers to {} (try: synapse tabular train {} --target premium)\n", a.csv,
               a.csv);
    return 0;
  }
  fmt::print("{}", apps::run_demo(a.name, a.seed).text);
  return 0;
}

}  // namespace

Command add_demo(CLI::App& app) {
  auto* sub = app.add_subcommand("demo", "Small lessons with checked numbers: xor, years, premium");
  auto a = std::make_shared<DemoArgs>();
  sub->add_option("name", a->name, "xor (logistic regression vs a 2-4-1 net), years (the >5 years rule), premium "
                                   "(NaN until the features are normalised)")
      ->required()->check(CLI::IsMember(apps::demo_names()));
  sub->add_option("--seed", a->seed, "Random seed")->capture_default_str()->check(unsigned_integer());
  sub->add_option("--csv", a->csv, "premium: write its generated table to this CSV file instead");
  return {sub, [a] { return run_demo(*a); }};
}

}  // namespace synapse::cli
