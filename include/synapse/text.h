// Text data: UTF-8 decoding, a character vocabulary, padded token sequences and n-gram baselines.
//
//   std::u32string text = data::read_utf8_file("poems.txt");            // code points
//   auto vocab = data::Vocabulary::build({text}, {.min_count = 2});     // <pad> <bos> <eos> <unk> + chars
//   std::vector<std::int64_t> ids = vocab.encode(U"春眠不覺曉", /*bos=*/true, /*eos=*/true);
//   checkpoint.tensors["vocabulary"] = vocab.to_tensor();             // int64 code points, in id order
//   auto again = data::Vocabulary::from_tensor(checkpoint.tensors.at("vocabulary"));
//
// A language model learns to predict token t+1 from tokens 0..t: language_model_pairs turns each
// sequence into an input row and a target row shifted by one, padded with <pad> (0) to a common
// length and truncated beyond it; the loss skips the padded targets
// (train::losses::sparse_categorical_crossentropy(true, /*ignore_class=*/0)).
//
// Baselines: NgramModel(1) is the add-k unigram, NgramModel(2) the add-k bigram over token ids;
// perplexity() is exp(mean negative log-likelihood) over the non-pad targets, the same tokens a
// neural model's masked loss counts.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "synapse/data.h"
#include "synapse/tensor.h"

namespace synapse::data {

// ---- UTF-8 ----
// Decodes UTF-8 into code points. Throws Error naming `source` (a file name, or "<string>") and the
// byte offset of the first invalid sequence: a stray continuation byte, a truncated sequence, an
// overlong encoding, a surrogate or a value above U+10FFFF. A leading byte-order mark is skipped.
std::u32string decode_utf8(std::string_view bytes, const std::string& source = "<string>");
std::string encode_utf8(std::u32string_view text);
std::string encode_utf8(char32_t c);
// Reads and decodes a whole file (errors name the file).
std::u32string read_utf8_file(const std::string& path);

// ---- vocabulary ----
class Vocabulary {
 public:
  static constexpr std::int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;
  static constexpr std::int64_t kNumSpecial = 4;

  struct BuildOptions {
    std::int64_t min_count = 1;  // characters seen fewer times become <unk>
    std::int64_t max_size = 0;   // > 0: keep at most this many ids (specials included), most frequent first
  };
  // Characters by decreasing frequency (ties: by code point), after the four special tokens.
  static Vocabulary build(const std::vector<std::u32string>& texts, const BuildOptions& options);
  static Vocabulary build(const std::vector<std::u32string>& texts) { return build(texts, BuildOptions{}); }
  // Ids kNumSpecial, kNumSpecial + 1, ... for these characters (no duplicates).
  static Vocabulary from_chars(std::vector<char32_t> chars);

  // The characters as an int64 tensor [size() - kNumSpecial] of code points in id order, for a
  // checkpoint; from_tensor checks the dtype, rank, code points and duplicates.
  Tensor to_tensor() const;
  static Vocabulary from_tensor(const Tensor& t);

  std::int64_t size() const { return static_cast<std::int64_t>(chars_.size()) + kNumSpecial; }
  bool contains(char32_t c) const { return ids_.count(c) != 0; }
  std::int64_t id(char32_t c) const;        // kUnk when missing
  char32_t character(std::int64_t id) const;  // throws for a special or out-of-range id
  bool is_special(std::int64_t id) const { return id >= 0 && id < kNumSpecial; }
  const std::vector<char32_t>& chars() const { return chars_; }

  std::vector<std::int64_t> encode(std::u32string_view text, bool add_bos = false, bool add_eos = false) const;
  // Skips <pad>, <bos> and <eos>; <unk> becomes U+FFFD. Throws for an id outside [0, size()).
  std::u32string decode(const std::vector<std::int64_t>& ids) const;

 private:
  std::vector<char32_t> chars_;
  std::unordered_map<char32_t, std::int64_t> ids_;
};

// ---- sequences ----
struct Sequences {
  Tensor inputs;   // int64 [N, T]: tokens 0 .. len-2 of each sequence, then <pad>
  Tensor targets;  // int64 [N, T]: tokens 1 .. len-1 (the next token at each step), then <pad>
  Tensor lengths;  // int64 [N]: steps that count (len - 1, at most T)
  std::int64_t count() const { return inputs.defined() ? inputs.dim(0) : 0; }
  std::int64_t tokens() const;  // sum of lengths: the targets a loss or a perplexity counts
};
// Language-model pairs from token sequences (each with at least 2 tokens), truncated to `steps` + 1
// tokens and padded with `pad`.
Sequences language_model_pairs(const std::vector<std::vector<std::int64_t>>& sequences, std::int64_t steps,
                               std::int64_t pad = Vocabulary::kPad);
// Cuts one long token stream into consecutive windows of steps + 1 tokens overlapping by one (the
// last, shorter window padded), as char-rnn does with a text file.
std::vector<std::vector<std::int64_t>> windows(const std::vector<std::int64_t>& stream, std::int64_t steps);
// Rows [lo, hi) of every tensor of `s` (views).
Sequences rows(const Sequences& s, std::int64_t lo, std::int64_t hi);
// Shuffled batches {inputs [B, T], targets [B, T], lengths [B]}: a new order every epoch from `seed`.
Dataset sequence_batches(const Sequences& s, std::int64_t batch_size, std::uint64_t seed);

// ---- n-gram baselines ----
// Add-k smoothed n-gram model (order 1 or 2) over token ids. Counts are taken from the (input,
// target) pairs of `train` where the target is not <pad>; the predicted vocabulary is every id but
// <pad> and <bos> (V = vocab_size - 2 outcomes), so every probability is positive.
//   unigram: P(w) = (c(w) + k) / (N + k V);  bigram: P(w | v) = (c(v, w) + k) / (c(v) + k V)
// With 0 < lambda < 1 the bigram is interpolated instead (Jelinek-Mercer):
//   P(w | v) = lambda c(v, w) / c(v) + (1 - lambda) P_unigram(w)   (first term 0 when c(v) = 0)
class NgramModel {
 public:
  NgramModel(int order, std::int64_t vocab_size, double k = 1.0, double lambda = 0.0);
  void fit(const Sequences& train);
  double probability(std::int64_t previous, std::int64_t token) const;
  // exp(mean -log P(target | input)) over the non-pad targets of `s`.
  double perplexity(const Sequences& s) const;
  int order() const { return order_; }

 private:
  int order_;
  std::int64_t vocab_;
  double k_, lambda_;
  std::vector<double> unigram_;                                  // c(w)
  double total_ = 0;                                             // N
  std::unordered_map<std::uint64_t, double> bigram_;             // c(v, w) keyed by v * vocab + w
  std::vector<double> context_;                                  // c(v)
};

}  // namespace synapse::data
