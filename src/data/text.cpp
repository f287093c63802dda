// Text data: UTF-8, the character vocabulary, language-model sequences and n-gram baselines.
#include "synapse/text.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "data/rows.h"

namespace synapse::data {

// ---- UTF-8 ----
std::u32string decode_utf8(std::string_view bytes, const std::string& source) {
  std::u32string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) i = 3;  // byte-order mark
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    std::size_t len = 0;
    char32_t c = 0, min = 0;
    if ((b & 0xE0) == 0xC0) { len = 2; c = b & 0x1F; min = 0x80; }
    else if ((b & 0xF0) == 0xE0) { len = 3; c = b & 0x0F; min = 0x800; }
    else if ((b & 0xF8) == 0xF0) { len = 4; c = b & 0x07; min = 0x10000; }
    else detail::fail("{}: invalid UTF-8 at byte offset {}: byte 0x{:02X} cannot start a character", source, i, b);
    SYN_CHECK(i + len <= n, "{}: invalid UTF-8 at byte offset {}: the text ends inside a {}-byte character", source, i, len);
    for (std::size_t k = 1; k < len; ++k) {
      SYN_CHECK((p[i + k] & 0xC0) == 0x80, "{}: invalid UTF-8 at byte offset {}: byte 0x{:02X} is not a continuation byte",
                source, i + k, p[i + k]);
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    SYN_CHECK(c >= min, "{}: invalid UTF-8 at byte offset {}: overlong encoding of U+{:04X}", source, i,
              static_cast<std::uint32_t>(c));
    SYN_CHECK(c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF), "{}: invalid UTF-8 at byte offset {}: U+{:04X} is not a character",
              source, i, static_cast<std::uint32_t>(c));
    out.push_back(c);
    i += len;
  }
  return out;
}

std::string encode_utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

std::string encode_utf8(std::u32string_view text) {
  std::string s;
  s.reserve(text.size() * 3);
  for (char32_t c : text) s += encode_utf8(c);
  return s;
}

std::u32string read_utf8_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SYN_CHECK(f.good(), "cannot open text file '{}'", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return decode_utf8(ss.str(), path);
}

// ---- vocabulary ----
Vocabulary Vocabulary::from_chars(std::vector<char32_t> chars) {
  Vocabulary v;
  v.chars_ = std::move(chars);
  for (std::size_t i = 0; i < v.chars_.size(); ++i) {
    const char32_t c = v.chars_[i];
    SYN_CHECK(c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF), "vocabulary: U+{:X} is not a character",
              static_cast<std::uint32_t>(c));
    SYN_CHECK(v.ids_.emplace(c, kNumSpecial + static_cast<std::int64_t>(i)).second,
              "vocabulary: character '{}' (U+{:04X}) appears twice", encode_utf8(c), static_cast<std::uint32_t>(c));
  }
  return v;
}

Vocabulary Vocabulary::build(const std::vector<std::u32string>& texts, const BuildOptions& o) {
  SYN_CHECK(o.min_count >= 1, "vocabulary: min_count must be at least 1, got {}", o.min_count);
  SYN_CHECK(o.max_size == 0 || o.max_size > kNumSpecial, "vocabulary: max_size must be 0 (no limit) or above {}, got {}",
            kNumSpecial, o.max_size);
  std::unordered_map<char32_t, std::int64_t> counts;
  for (const auto& t : texts)
    for (char32_t c : t) ++counts[c];
  std::vector<std::pair<char32_t, std::int64_t>> order(counts.begin(), counts.end());
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<char32_t> chars;
  for (const auto& [c, n] : order) {
    if (n < o.min_count) break;
    if (o.max_size > 0 && static_cast<std::int64_t>(chars.size()) + kNumSpecial >= o.max_size) break;
    chars.push_back(c);
  }
  return from_chars(std::move(chars));
}

Tensor Vocabulary::to_tensor() const {
  std::vector<std::int64_t> cps(chars_.begin(), chars_.end());
  return from_vector(cps, {static_cast<std::int64_t>(cps.size())});
}

Vocabulary Vocabulary::from_tensor(const Tensor& t) {
  SYN_CHECK(t.defined() && t.dtype() == DType::Int64 && t.ndim() == 1,
            "vocabulary: expected an int64 tensor [n] of code points, got {}",
            t.defined() ? fmt::format("{} {}", dtype_name(t.dtype()), to_string(t.shape())) : std::string("nothing"));
  std::vector<char32_t> chars;
  for (std::int64_t c : t.to_vector<std::int64_t>()) {
    SYN_CHECK(c >= 0 && c <= 0x10FFFF, "vocabulary: code point {} is outside [0, 0x10FFFF]", c);
    chars.push_back(static_cast<char32_t>(c));
  }
  return from_chars(std::move(chars));
}

std::int64_t Vocabulary::id(char32_t c) const {
  auto it = ids_.find(c);
  return it == ids_.end() ? kUnk : it->second;
}

char32_t Vocabulary::character(std::int64_t id) const {
  SYN_CHECK(id >= kNumSpecial && id < size(), "vocabulary: id {} is not a character (characters are {} .. {})", id,
            kNumSpecial, size() - 1);
  return chars_[static_cast<std::size_t>(id - kNumSpecial)];
}

std::vector<std::int64_t> Vocabulary::encode(std::u32string_view text, bool add_bos, bool add_eos) const {
  std::vector<std::int64_t> ids;
  ids.reserve(text.size() + 2);
  if (add_bos) ids.push_back(kBos);
  for (char32_t c : text) ids.push_back(id(c));
  if (add_eos) ids.push_back(kEos);
  return ids;
}

std::u32string Vocabulary::decode(const std::vector<std::int64_t>& ids) const {
  std::u32string out;
  for (std::int64_t i : ids) {
    SYN_CHECK(i >= 0 && i < size(), "vocabulary: id {} is outside [0, {})", i, size());
    if (i == kUnk) out.push_back(U'\uFFFD');
    else if (i >= kNumSpecial) out.push_back(character(i));
  }
  return out;
}

// ---- sequences ----
std::int64_t Sequences::tokens() const {
  std::int64_t n = 0;
  if (lengths.defined())
    for (std::int64_t l : lengths.to_vector<std::int64_t>()) n += l;
  return n;
}

Sequences language_model_pairs(const std::vector<std::vector<std::int64_t>>& seqs, std::int64_t steps, std::int64_t pad) {
  SYN_CHECK(steps >= 1, "language_model_pairs: steps must be at least 1, got {}", steps);
  const auto n = static_cast<std::int64_t>(seqs.size());
  Sequences s;
  s.inputs = full({n, steps}, static_cast<double>(pad), DType::Int64);
  s.targets = full({n, steps}, static_cast<double>(pad), DType::Int64);
  s.lengths = zeros({n}, DType::Int64);
  std::int64_t* x = s.inputs.data<std::int64_t>();
  std::int64_t* y = s.targets.data<std::int64_t>();
  std::int64_t* len = s.lengths.data<std::int64_t>();
  for (std::int64_t r = 0; r < n; ++r) {
    const auto& q = seqs[static_cast<std::size_t>(r)];
    SYN_CHECK(q.size() >= 2, "language_model_pairs: sequence {} has {} token(s); a pair needs at least 2", r, q.size());
    const std::int64_t l = std::min<std::int64_t>(static_cast<std::int64_t>(q.size()) - 1, steps);
    for (std::int64_t t = 0; t < l; ++t) {
      x[r * steps + t] = q[static_cast<std::size_t>(t)];
      y[r * steps + t] = q[static_cast<std::size_t>(t + 1)];
    }
    len[r] = l;
  }
  return s;
}

std::vector<std::vector<std::int64_t>> windows(const std::vector<std::int64_t>& stream, std::int64_t steps) {
  SYN_CHECK(steps >= 1, "windows: steps must be at least 1, got {}", steps);
  std::vector<std::vector<std::int64_t>> out;
  const auto n = static_cast<std::int64_t>(stream.size());
  for (std::int64_t lo = 0; lo + 1 < n; lo += steps) {
    const std::int64_t hi = std::min(n, lo + steps + 1);
    out.emplace_back(stream.begin() + lo, stream.begin() + hi);
  }
  return out;
}

Sequences rows(const Sequences& s, std::int64_t lo, std::int64_t hi) {
  return {internal::rows_view(s.inputs, lo, hi), internal::rows_view(s.targets, lo, hi),
          internal::rows_view(s.lengths, lo, hi)};
}

Dataset sequence_batches(const Sequences& s, std::int64_t batch_size, std::uint64_t seed) {
  SYN_CHECK(batch_size >= 1, "sequence_batches: batch_size must be at least 1, got {}", batch_size);
  return Dataset::from_tensors({s.inputs, s.targets, s.lengths}).shuffle(s.count(), seed).batch(batch_size);
}

// ---- n-gram baselines ----
NgramModel::NgramModel(int order, std::int64_t vocab_size, double k, double lambda)
    : order_(order), vocab_(vocab_size), k_(k), lambda_(lambda) {
  SYN_CHECK(order == 1 || order == 2, "NgramModel: order must be 1 or 2, got {}", order);
  SYN_CHECK(lambda >= 0 && lambda < 1, "NgramModel: lambda must be in [0, 1), got {}", lambda);
  SYN_CHECK(vocab_size > Vocabulary::kNumSpecial - 2, "NgramModel: vocabulary size {} is too small", vocab_size);
  SYN_CHECK(k > 0 && std::isfinite(k), "NgramModel: k must be positive, got {}", k);
  unigram_.assign(static_cast<std::size_t>(vocab_), 0.0);
  context_.assign(static_cast<std::size_t>(vocab_), 0.0);
}

namespace {
// Calls fn(input, target) for every counted step of `s`.
template <class F> void for_each_step(const Sequences& s, std::int64_t vocab, F&& fn) {
  const std::int64_t n = s.count(), T = s.inputs.dim(1);
  const std::int64_t* x = s.inputs.data<std::int64_t>();
  const std::int64_t* y = s.targets.data<std::int64_t>();
  for (std::int64_t i = 0; i < n * T; ++i) {
    if (y[i] == Vocabulary::kPad) continue;
    SYN_CHECK(x[i] >= 0 && x[i] < vocab && y[i] >= 0 && y[i] < vocab, "NgramModel: token {} or {} is outside [0, {})", x[i],
              y[i], vocab);
    fn(x[i], y[i]);
  }
}
}  // namespace

void NgramModel::fit(const Sequences& train) {
  for_each_step(train, vocab_, [&](std::int64_t v, std::int64_t w) {
    unigram_[static_cast<std::size_t>(w)] += 1;
    total_ += 1;
    context_[static_cast<std::size_t>(v)] += 1;
    bigram_[static_cast<std::uint64_t>(v * vocab_ + w)] += 1;
  });
}

double NgramModel::probability(std::int64_t previous, std::int64_t token) const {
  const double outcomes = static_cast<double>(vocab_ - 2);  // never <pad> or <bos>
  if (token == Vocabulary::kPad || token == Vocabulary::kBos) return 0.0;
  const double unigram = (unigram_[static_cast<std::size_t>(token)] + k_) / (total_ + k_ * outcomes);
  if (order_ == 1) return unigram;
  auto it = bigram_.find(static_cast<std::uint64_t>(previous * vocab_ + token));
  const double c = it == bigram_.end() ? 0.0 : it->second;
  const double context = context_[static_cast<std::size_t>(previous)];
  if (lambda_ > 0) return (context > 0 ? lambda_ * c / context : 0.0) + (1 - lambda_) * unigram;
  return (c + k_) / (context + k_ * outcomes);
}

double NgramModel::perplexity(const Sequences& s) const {
  double nll = 0;
  std::int64_t count = 0;
  for_each_step(s, vocab_, [&](std::int64_t v, std::int64_t w) {
    nll -= std::log(probability(v, w));
    ++count;
  });
  SYN_CHECK(count > 0, "NgramModel: no tokens to evaluate");
  return std::exp(nll / static_cast<double>(count));
}

}  // namespace synapse::data
