// The synapse command's subcommands: each file registers one with CLI11 and runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>
#include <string>

#include "synapse/synapse.h"

namespace synapse::cli {

// A subcommand and what it does once the command line is parsed (returns the exit code).
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_train(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_predict(CLI::App& app);
Command add_summary(CLI::App& app);
Command add_ops(CLI::App& app);
Command add_graph(CLI::App& app);             // graph.cpp: Graphviz DOT/SVG of a model's graph
Command add_export(CLI::App& app);            // export.cpp: ONNX export of a checkpoint
Command add_run(CLI::App& app);               // run.cpp: evaluate an ONNX model on a data set
Command add_onnx_conformance(CLI::App& app);  // onnx_conformance.cpp: ONNX backend node tests
Command add_report(CLI::App& app);            // report.cpp: HTML report of a run
Command add_data(CLI::App& app);              // data.cpp: data set facts and sample grids
Command add_poem(CLI::App& app);              // poem.cpp: train the Tang-poem LSTM, write poems
Command add_text(CLI::App& app);              // text.cpp: a character language model on any text
Command add_tabular(CLI::App& app);           // tabular.cpp: train on a CSV table, predict
Command add_demo(CLI::App& app);              // demo.cpp: the small tabular lessons (xor, years, premium)
Command add_serve(CLI::App& app);             // serve.cpp: the digit-drawing page and POST /predict
Command add_stylize(CLI::App& app);           // stylize.cpp: neural style transfer
Command add_import_keras(CLI::App& app);      // keras.cpp: a Keras / TF.js layers-model into a .syn (and ONNX)

// ---- flag checks ----
// CLI11 refuses a value that fails a check with "FLAG: MESSAGE" and a non-zero exit; these messages
// name the value and what is allowed ("--epochs: Value 0 is not an integer from 1 to 100000").
CLI::Validator integer_in(std::int64_t min, std::int64_t max);
CLI::Validator positive_number();
// --precision fp32|bf16 (device.h) on a subcommand, into `value`; precision_flag parses it (errors name
// the flag, the value and the allowed ones, or the CPU's missing avx512_bf16).
void add_precision_option(CLI::App* sub, std::string& value, const std::string& what);
MatmulPrecision precision_flag(const std::string& value);      // a finite number > 0: refuses 0, negatives, nan and inf
CLI::Validator non_negative_number();  // a finite number >= 0
CLI::Validator unsigned_integer();     // 0, 1, 2, ...: refuses -1 (an unsigned flag would wrap it around)

// ---- shared helpers ----
// poem / text: the flags of a character language model's training (--logdir --epochs --batch --seq-len
// --lr --seed --steps --minutes --embed --units; the values already in `o` are the defaults) and of
// its sampling (--temperature --top-k --seed).
void add_lm_train_options(CLI::App* sub, apps::LmTrainOptions& o, std::int64_t& seq_len);
void add_sample_options(CLI::App* sub, apps::SampleOptions& o);

}  // namespace synapse::cli
