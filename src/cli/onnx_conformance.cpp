// synapse onnx-conformance [DIR]: runs ONNX's backend node tests (Debian's libonnx-testdata) through the
// importer and graph mode. Each case folder holds model.onnx and test_data_set_*/{input,output}_K.pb
// (TensorProtos). A case is skipped when the importer reports something unsupported (an op type, an
// attribute variant, an element type); it passes when every output matches within ONNX's backend-test
// tolerances; anything else fails, and the command then exits non-zero.
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "cli/commands.h"
#include "core/check.h"
#include "synapse/graph.h"
#include "synapse/onnx.h"

namespace synapse::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultDir = "/usr/share/libonnx-testdata/data/node";

struct Tolerance {
  double rtol = 1e-3, atol = 1e-5;
};

// Values as doubles, for one comparison routine over every dtype.
std::vector<double> values_of(const Tensor& t) {
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  auto fill = [&]<class T>() {
    const T* p = t.data<T>();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(p[i]);
  };
  switch (t.dtype()) {
    case DType::Float32: fill.template operator()<float>(); break;
    case DType::Int32: fill.template operator()<std::int32_t>(); break;
    case DType::Int64: fill.template operator()<std::int64_t>(); break;
    case DType::UInt8: fill.template operator()<std::uint8_t>(); break;
    case DType::Bool: fill.template operator()<bool>(); break;
  }
  return v;
}

// Empty when they match, else why not.
std::string compare(const Tensor& got, const Tensor& want, const std::string& name, Tolerance tol) {
  if (got.dtype() != want.dtype())
    return fmt::format("output '{}' is {}, expected {}", name, dtype_name(got.dtype()), dtype_name(want.dtype()));
  if (got.shape() != want.shape())
    return fmt::format("output '{}' has shape {}, expected {}", name, to_string(got.shape()), to_string(want.shape()));
  const auto g = values_of(got), w = values_of(want);
  const bool exact = want.dtype() != DType::Float32;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) && std::isnan(g[i])) continue;
    if (std::isinf(w[i]) && g[i] == w[i]) continue;
    const double err = std::abs(g[i] - w[i]);
    if (exact ? err != 0.0 : !(err <= tol.atol + tol.rtol * std::abs(w[i])))
      return fmt::format("output '{}' differs at flat index {}: got {}, expected {}", name, i, g[i], w[i]);
  }
  return {};
}

// The test_data_set folders of a case, in order.
std::vector<fs::path> data_sets(const fs::path& dir) {
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  return sets;
}

std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int k = 0;; ++k) {
    fs::path p = dir / fmt::format("{}_{}.pb", prefix, k);
    if (!fs::exists(p)) break;
    files.push_back(p);
  }
  return files;
}

enum class Outcome { Pass, Fail, Skip };

struct CaseResult {
  Outcome outcome = Outcome::Pass;
  std::string reason;
};

// Imports the model, binding as constants the graph inputs it needs as such (ONNX's node tests feed
// shapes, axes and pads as inputs; Synapse's ops take them as static attributes).
onnx::Model import_with_constants(const std::string& path, const std::map<std::string, Tensor>& values,
                                  std::set<std::string>& folded) {
  onnx::ImportOptions opts;
  for (;;) {
    try {
      return onnx::import_model(path, opts);
    } catch (const onnx::Unsupported& e) {
      const std::string& name = e.constant_input();
      if (name.empty() || !values.contains(name) || opts.constant_inputs.contains(name)) throw;
      opts.constant_inputs[name] = values.at(name);
      folded.insert(name);
    }
  }
}

CaseResult run_case(const fs::path& dir, Tolerance tol) {
  CaseResult result;
  try {
    const std::string path = (dir / "model.onnx").string();
    const onnx::ModelInfo info = onnx::inspect(path);
    const auto sets = data_sets(dir);
    if (sets.empty()) return {Outcome::Skip, "no test data"};
    // A first import without data finds unsupported inputs (sequences, optionals) before their files
    // are read as tensors.
    try {
      (void)onnx::import_model(path);
    } catch (const onnx::Unsupported& e) {
      if (e.constant_input().empty()) throw;
    }
    std::set<std::string> folded;
    for (const auto& set : sets) {
      const auto in_files = numbered(set, "input"), out_files = numbered(set, "output");
      if (in_files.size() != info.input_names.size())
        return {Outcome::Fail, fmt::format("{} has {} inputs, the model {}", set.filename().string(), in_files.size(),
                                           info.input_names.size())};
      std::map<std::string, Tensor> values;
      for (std::size_t k = 0; k < in_files.size(); ++k)
        values[info.input_names[k]] = onnx::load_tensor(in_files[k].string());
      onnx::Model m = import_with_constants(path, values, folded);
      if (out_files.size() != m.outputs.size())
        return {Outcome::Fail, fmt::format("{} has {} outputs, the model {}", set.filename().string(),
                                           out_files.size(), m.outputs.size())};
      graph::Session session(*m.graph);
      graph::Feeds feeds;
      for (std::size_t k = 0; k < m.inputs.size(); ++k) feeds.emplace_back(m.inputs[k], values.at(m.input_names[k]));
      std::vector<Tensor> fetch, got(m.outputs.size());
      std::vector<std::size_t> fetched;
      for (std::size_t k = 0; k < m.outputs.size(); ++k) {
        if (graph::is_symbolic(m.outputs[k])) {
          fetch.push_back(m.outputs[k]);
          fetched.push_back(k);
        } else {
          got[k] = m.outputs[k];
        }
      }
      if (!fetch.empty()) {
        auto out = session.run(fetch, feeds);
        for (std::size_t j = 0; j < fetched.size(); ++j) got[fetched[j]] = out[j];
      }
      for (std::size_t k = 0; k < out_files.size(); ++k) {
        const std::string why = compare(got[k], onnx::load_tensor(out_files[k].string()), m.output_names[k], tol);
        if (!why.empty()) return {Outcome::Fail, set.filename().string() + ": " + why};
      }
    }
    if (!folded.empty()) result.reason = fmt::format("(inputs bound as constants: {})", fmt::join(folded, ", "));
    return result;
  } catch (const onnx::Unsupported& e) {
    return {Outcome::Skip, e.what()};
  } catch (const std::exception& e) {
    return {Outcome::Fail, e.what()};
  }
}

}  // namespace

Command add_onnx_conformance(CLI::App& app) {
  struct Args {
    std::string dir = kDefaultDir;
    std::string filter;
    bool quiet = false;
    Tolerance tol;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("onnx-conformance", "Run ONNX's backend node tests through the importer");
  sub->add_option("dir", a->dir, "Folder of node test cases (libonnx-testdata's node folder)")->capture_default_str();
  sub->add_option("--filter", a->filter, "Only cases whose name matches this regular expression");
  sub->add_flag("-q,--quiet", a->quiet, "Print only failures and the totals");
  sub->add_option("--rtol", a->tol.rtol, "Relative tolerance")->capture_default_str()->check(non_negative_number());
  sub->add_option("--atol", a->tol.atol, "Absolute tolerance")->capture_default_str()->check(non_negative_number());
  return {sub, [a] {
            SYN_CHECK(fs::is_directory(a->dir), "'{}' is not a folder of ONNX node tests (install libonnx-testdata)",
                      a->dir);
            std::vector<fs::path> cases;
            const std::regex filter(a->filter.empty() ? ".*" : a->filter);
            for (const auto& e : fs::directory_iterator(a->dir))
              if (fs::exists(e.path() / "model.onnx") && std::regex_search(e.path().filename().string(), filter))
                cases.push_back(e.path());
            std::sort(cases.begin(), cases.end());
            SYN_CHECK(!cases.empty(), "no test cases (folders with model.onnx) in '{}'", a->dir);
            int passed = 0, failed = 0, skipped = 0;
            for (const auto& dir : cases) {
              std::string ops;
              try {
                ops = fmt::format("{}", fmt::join(onnx::inspect((dir / "model.onnx").string()).op_types, ","));
              } catch (const std::exception&) {
                ops = "?";
              }
              const CaseResult r = run_case(dir, a->tol);
              const char* tag = r.outcome == Outcome::Pass ? "pass" : r.outcome == Outcome::Fail ? "FAIL" : "skip";
              (r.outcome == Outcome::Pass ? passed : r.outcome == Outcome::Fail ? failed : skipped) += 1;
              if (a->quiet && r.outcome != Outcome::Fail) continue;
              std::string reason = r.reason;
              // One line per case: the importer's messages start with the model path, already shown.
              const std::string prefix = fmt::format("'{}': ", (dir / "model.onnx").string());
              if (reason.rfind(prefix, 0) == 0) reason = reason.substr(prefix.size());
              std::replace(reason.begin(), reason.end(), '\n', ' ');
              fmt::print("{}  {:<52} {:<28} {}\n", tag, dir.filename().string(), ops, reason);
            }
            fmt::print("{} passed, {} failed, {} skipped (unsupported) of {} cases\n", passed, failed, skipped,
                       cases.size());
            return failed > 0 ? 1 : 0;
          }};
}

}  // namespace synapse::cli
