// The report of a character language model run: what report::write_run_report shows, as data.
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "synapse/poem.h"
#include "synapse/report.h"

namespace synapse::apps {

namespace fs = std::filesystem;

std::string verse_lines(std::u32string_view poem) {
  std::string out;
  std::u32string line;
  for (char32_t c : poem) {
    line.push_back(c);
    if (c == U'，' || c == U'。') {
      out += data::encode_utf8(line) + "\n";
      line.clear();
    }
  }
  return out + data::encode_utf8(line);
}

std::string write_lm_report(const std::string& run_dir, const LmReportOptions& o) {
  SYN_CHECK(o.poems >= 0, "report: poems {} must be 0 or more", o.poems);
  SYN_CHECK(o.sample_length >= 0, "report: sample length {} must be 0 or more", o.sample_length);
  check_sample_options(o.sample);
  const report::RunHistory h = report::read_history((fs::path(run_dir) / "history.json").string());
  auto text = [&](const std::string& k, const std::string& fallback = "") { return report::setting_string(h, k, fallback); };
  auto number = [&](const std::string& k) { return report::setting_number(h, k); };
  const std::string kind = text("kind", "text");
  const bool poems = kind == "poem";
  LoadedLm lm = load_char_lm(run_dir);

  report::RunReport r;
  r.title = poems ? "Tang poems (character LSTM)" : fmt::format("text: {}", fs::path(text("data", run_dir)).filename().string());
  r.kind = "character language model (synapse " + std::string(poems ? "poem" : "text") + " train)";
  r.output = o.output;

  // ---- headline numbers: the last epoch's held-out perplexity next to the baselines ----
  const double unigram = number("unigram_perplexity"), bigram = number("bigram_perplexity"),
               interpolated = number("interpolated_bigram_perplexity");
  // Time per training step: each epoch's step_seconds (measured before the held-out pass) weighted by
  // its steps.
  double ppl = std::numeric_limits<double>::quiet_NaN(), train_secs = 0, step_secs = 0, timed_steps = 0, prev_step = 0;
  for (const auto& e : h.epochs) {
    if (auto it = e.find("val_perplexity"); it != e.end() && std::isfinite(it->second)) ppl = it->second;
    if (auto it = e.find("seconds"); it != e.end() && std::isfinite(it->second)) train_secs += it->second;
    const double step = e.count("step") ? e.at("step") : prev_step;
    if (auto it = e.find("step_seconds"); it != e.end() && std::isfinite(it->second) && step > prev_step) {
      step_secs += it->second * (step - prev_step);
      timed_steps += step - prev_step;
    }
    prev_step = step;
  }
  const double steps = h.epochs.empty() || !h.epochs.back().count("step") ? number("steps") : h.epochs.back().at("step");
  auto fixed1 = [](double v) { return std::isfinite(v) ? fmt::format("{:.1f}", v) : std::string("–"); };
  r.cards.push_back({"held-out perplexity", fixed1(ppl),
                     std::isfinite(ppl) && bigram > 0 ? fmt::format("per character; {:.2f}x the bigram", ppl / bigram)
                                                      : "per character"});
  r.cards.push_back({"bigram baseline", fixed1(bigram),
                     fmt::format("unigram {} · interpolated {}", fixed1(unigram), fixed1(interpolated))});
  r.cards.push_back({"epochs", std::to_string(h.epochs.size()),
                     std::isfinite(steps) ? fmt::format("{:g} steps", steps) : ""});
  const double total = std::isfinite(number("seconds")) ? number("seconds") : train_secs;
  r.cards.push_back({"time",
                     total < 60 ? fmt::format("{:.1f} s", total)
                                : fmt::format("{}m {:02}s", static_cast<int>(total) / 60, static_cast<int>(total) % 60),
                     timed_steps > 0 ? fmt::format("{:.3f} s per training step", step_secs / timed_steps) : ""});
  std::string params = std::to_string(lm.model->count_parameters());
  for (auto i = static_cast<std::ptrdiff_t>(params.size()) - 3; i > 0; i -= 3) params.insert(static_cast<std::size_t>(i), ",");
  r.cards.push_back({"parameters", params,
                     fmt::format("{} characters + 4 special tokens", lm.vocab.chars().size())});

  // ---- curves ----
  r.charts_note =
      "Per epoch: the training loss is the mean over the epoch's batches, the held-out numbers are measured after "
      "it on the same held-out tokens as the n-gram baselines (dashed). Hover a point for its value.";
  r.charts.push_back({.title = "Loss",
                      .y_label = "cross-entropy per character (nats)",
                      .series = {{"loss", "training"}, {"val_loss", "held-out"}},
                      .baselines = {{"bigram", bigram > 0 ? std::log(bigram) : std::nan("")}}});
  double lowest = ppl;
  for (const auto& e : h.epochs)
    if (auto it = e.find("val_perplexity"); it != e.end() && std::isfinite(it->second)) lowest = std::min(lowest, it->second);
  r.charts.push_back({.title = "Held-out perplexity",
                      .y_label = "perplexity per character",
                      .series = {{"val_perplexity", "LSTM"}},
                      .baselines = {{"unigram", unigram}, {"bigram", bigram}, {"interp. bigram", interpolated}},
                      .log_y = std::isfinite(lowest) && lowest > 0 && unigram / lowest > 5});
  r.columns = {{"loss", "loss", "{:.4f}"},
               {"val_loss", "held-out loss", "{:.4f}"},
               {"val_perplexity", "held-out perplexity", "{:.2f}"},
               {"step_seconds", "s / step", "{:.3f}"}};

  // ---- samples from the final model, fixed seeds ----
  SampleOptions so = o.sample;
  if (poems) {
    r.samples_title = "Poems written by the final model";
    r.samples_note = fmt::format(
        "synapse poem write {} --form F --seed S --temperature {:g}{}: every line has exactly the form's characters, "
        "with ， and 。 in their places.",
        run_dir, so.temperature, so.top_k > 0 ? fmt::format(" --top-k {}", so.top_k) : "");
    for (int i = 0; i < o.poems; ++i) {
      VerseOptions v;
      v.form = i % 2 == 0 ? 5 : 7;
      v.lines = 4;
      v.sample = so;
      v.sample.seed = o.sample.seed + static_cast<std::uint64_t>(i);
      const std::u32string poem = write_verse(lm.stepper(), lm.vocab, v);
      r.samples.push_back({fmt::format("{} characters × {} lines, seed {}", v.form, v.lines, v.sample.seed),
                           verse_lines(poem)});
    }
  } else {
    const std::string prime = o.prime.empty() ? text("sample_prime") : o.prime;
    r.samples_title = "A sample from the final model";
    if (prime.empty()) {
      r.samples_note = "No prime to start from (the run has no sample_prime setting).";
    } else {
      r.samples_note = fmt::format("synapse text sample {} --prime '…' --length {} --seed {} --temperature {:g}{}",
                                   run_dir, o.sample_length, so.seed, so.temperature,
                                   o.prime.empty() ? "; the prime is the start of the training text, up to its first "
                                                     "line break."
                                                   : ".");
      const std::u32string out =
          sample_text(lm.stepper(), lm.vocab, data::decode_utf8(prime, "prime"), o.sample_length, so);
      r.samples.push_back({fmt::format("prime \"{}\", {} characters drawn, seed {}", prime, o.sample_length, so.seed),
                           data::encode_utf8(out)});
    }
  }

  std::ostringstream os;
  lm.model->summary(os);
  r.model_summary = os.str();
  return report::write_run_report(run_dir, r);
}

}  // namespace synapse::apps
