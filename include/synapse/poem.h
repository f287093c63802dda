// Apps: the Tang-poem writer and the character-level language model (char-rnn) behind it.
//
// The workflow above train: a corpus reader for the chinese-poetry JSON files, a filter for regulated
// verse, simplified characters through OpenCC, the model (Embedding -> LSTM -> LSTM -> Dense), its
// training with held-out perplexity next to n-gram baselines, and constrained sampling that always
// yields well-formed verse.
//
//   auto poems = apps::read_poems("data/tang-poems");                 // poet.tang.*.json
//   auto data = apps::prepare_poems(poems, {.seq_len = 65});          // regulated verse, split, vocabulary
//   apps::train_char_lm(data, {.logdir = "runs/poem", .kind = "poem"});
//   auto lm = apps::load_char_lm("runs/poem/model.syn");
//   std::u32string poem = apps::write_verse(lm.stepper(), lm.vocab, {.form = 5, .lines = 4});
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "synapse/nn.h"
#include "synapse/text.h"

namespace synapse::apps {

// ---- the corpus ----
struct Poem {
  std::string author, title;
  std::u32string text;  // the paragraphs joined, e.g. U"秦川雄帝宅，函谷壯皇居。綺殿千尋起，離宮百雉餘。"
};
// Reads one JSON file (an array of {"author", "title", "paragraphs": [...]}) or every poet.tang.*.json
// of a folder (in numeric order; every *.json when there is none). Errors name the file.
std::vector<Poem> read_poems(const std::string& path);

// Regulated verse: 4 or 8 lines of 5 or 7 characters, "，" after odd lines and "。" after even ones,
// no other punctuation. Returns {form, lines} or nothing.
struct VerseShape {
  int form = 0;   // characters per line
  int lines = 0;
};
std::optional<VerseShape> regulated_verse(std::u32string_view text);
// Punctuation and spaces (ASCII and CJK): never a character of a verse line.
bool is_punctuation(char32_t c);

// Traditional -> simplified characters through OpenCC's command (Debian package opencc, config
// t2s.json). Throws naming the command when it is missing or fails.
std::vector<std::u32string> to_simplified(const std::vector<std::u32string>& texts);

// ---- data for a character language model ----
struct LmData {
  data::Vocabulary vocab;
  data::Sequences train, valid;  // language-model pairs, ignore <pad> targets
  std::int64_t train_texts = 0, valid_texts = 0;
};
struct PrepareOptions {
  std::int64_t seq_len = 65;       // steps per sequence (inputs and targets)
  double valid_fraction = 0.05;    // held out, at most max_valid texts
  std::int64_t max_valid = 2000;
  std::uint64_t split_seed = 0;    // fixed by default, so every run is judged on the same poems
  std::int64_t min_count = 1;      // rarer characters become <unk>
};
// Texts -> <bos> + characters + <eos> each, split into train / held out, vocabulary from train only.
LmData prepare_texts(const std::vector<std::u32string>& texts, const PrepareOptions& o);
// One long text -> windows of seq_len + 1 characters (no <bos>/<eos>), the last windows held out.
LmData prepare_stream(const std::u32string& text, const PrepareOptions& o);

// ---- the model ----
struct CharLmOptions {
  std::int64_t embed = 128;
  std::int64_t units = 384;  // per LSTM layer
};
// Embedding(vocab, embed) -> LSTM(units) -> LSTM(units) (both return sequences) -> Dense(vocab):
// tokens int64 [B, T] -> logits [B, T, vocab]. `stateful` carries the LSTM state across calls
// (generation, one token at a time); reset_states() forgets it.
nn::ModulePtr make_char_lm(std::int64_t vocab_size, const CharLmOptions& o, bool stateful = false);
void reset_states(nn::Module& model);

// ---- training ----
struct LmTrainOptions {
  int epochs = 10;
  int batch = 64;
  double lr = 2e-3;
  std::uint64_t seed = 0;
  std::int64_t max_steps = 0;  // > 0: stop after this many steps
  double minutes = 0;          // > 0: stop after this much training time (the current batch finishes)
  std::string logdir = "runs/poem";
  std::string kind = "poem";   // "poem" or "text": stored in the model file
  CharLmOptions model;
  std::map<std::string, std::string> metadata;  // more metadata for the model file
  int verbose = 1;
};
struct LmTrainResult {
  double perplexity = 0;          // held out, per token, after the last epoch
  // Baselines on the same tokens: add-1 unigram, add-0.03 bigram, interpolated bigram (lambda 0.7
  // with the add-1 unigram), values picked on the Tang poems' held-out split.
  double unigram = 0, bigram = 0, interpolated = 0;
  std::int64_t steps = 0;
  double seconds = 0;
  std::string model_path;
};
// Fits with train::Trainer (progress bar, checkpoints every epoch in LOGDIR/checkpoints, metrics.csv,
// TensorBoard logs, history.json); prints the held-out perplexity each epoch next to the unigram and
// bigram baselines; saves LOGDIR/model.syn with the vocabulary inside ("vocabulary").
LmTrainResult train_char_lm(const LmData& data, const LmTrainOptions& o);
// exp(mean NLL) of the model over the non-pad targets of `s`.
double perplexity(nn::Module& model, const data::Sequences& s, std::int64_t batch = 64);

// ---- generation ----
// Feeds one token and returns the logits of the next one (a model with state).
using NextLogits = std::function<std::vector<float>(std::int64_t token)>;
struct LoadedLm {
  nn::ModulePtr model;  // stateful, batch 1
  data::Vocabulary vocab;
  std::map<std::string, std::string> metadata;
  // Resets the state, then steps the model one token at a time.
  NextLogits stepper();
};
// Reads RUN/model.syn (or a checkpoint file) written by train_char_lm.
LoadedLm load_char_lm(const std::string& path);

struct SampleOptions {
  double temperature = 1.0;  // > 0
  int top_k = 0;             // 0: all allowed tokens
  std::uint64_t seed = 0;
};
struct VerseOptions {
  int form = 5;               // 5 or 7 characters per line
  int lines = 4;              // 4 or 8
  std::u32string start;       // the first character (at most one)
  std::u32string acrostic;    // one character per line (藏头诗)
  SampleOptions sample;
};
// Samples a poem: <bos>, then per line `form` characters and "，" (odd lines) or "。" (even lines).
// Where a character is needed only vocabulary characters that are not punctuation may be drawn, so
// the form holds whatever the model prefers and generation takes exactly form * lines draws. Throws
// for a bad option or a start / acrostic character missing from the vocabulary (naming it).
std::u32string write_verse(const NextLogits& next, const data::Vocabulary& vocab, const VerseOptions& o);
// char-rnn sampling: feeds `prime` (every character must be in the vocabulary), then draws `length`
// characters (never a special token). Returns prime + the drawn characters.
std::u32string sample_text(const NextLogits& next, const data::Vocabulary& vocab, std::u32string_view prime,
                           std::int64_t length, const SampleOptions& o);
// Validates sampling options: throws naming the option, its value and what is allowed.
void check_sample_options(const SampleOptions& o);
// One verse line per text line: "春眠不覺曉，處處聞啼鳥。" -> "春眠不覺曉，\n處處聞啼鳥。\n".
std::string verse_lines(std::u32string_view poem);

// ---- the report ----
struct LmReportOptions {
  int poems = 4;                       // poem runs: 5- and 7-character quatrains, seeds seed, seed + 1, ...
  std::int64_t sample_length = 300;    // text runs: characters drawn after the prime
  std::string prime;                   // text runs; empty: the run's "sample_prime" setting
  SampleOptions sample{.temperature = 0.8};
  std::string output;                  // default RUN/report.html
};
// RUN/report.html of a train_char_lm run (report::write_run_report): the training and held-out loss
// and the held-out perplexity per epoch next to the unigram and bigram baselines, the model summary,
// the settings and timing, and samples from the final model RUN/model.syn with fixed seeds (poems for
// kind "poem", a continuation of the prime otherwise). Returns the page's path.
std::string write_lm_report(const std::string& run_dir, const LmReportOptions& o = {});

}  // namespace synapse::apps
