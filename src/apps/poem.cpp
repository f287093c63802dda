// The poem corpus (reader, regulated-verse filter, OpenCC) and constrained sampling.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unistd.h>

#include "core/check.h"
#include "synapse/poem.h"

namespace synapse::apps {

namespace fs = std::filesystem;

// ---- the corpus ----
namespace {

std::vector<Poem> read_poem_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SYN_CHECK(f.good(), "cannot open poem file '{}'", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    detail::fail("'{}' is not valid JSON: {}", path, e.what());
  }
  SYN_CHECK(j.is_array(), "'{}': expected a JSON array of poems", path);
  std::vector<Poem> poems;
  poems.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& p = j[i];
    SYN_CHECK(p.is_object() && p.contains("paragraphs") && p["paragraphs"].is_array(),
              "'{}': poem {} has no \"paragraphs\" array", path, i);
    Poem poem;
    if (p.contains("author") && p["author"].is_string()) poem.author = p["author"].get<std::string>();
    if (p.contains("title") && p["title"].is_string()) poem.title = p["title"].get<std::string>();
    std::string text;
    for (const auto& para : p["paragraphs"]) {
      SYN_CHECK(para.is_string(), "'{}': poem {} has a paragraph that is not a string", path, i);
      text += para.get<std::string>();
    }
    poem.text = data::decode_utf8(text, fmt::format("{} (poem {})", path, i));
    poems.push_back(std::move(poem));
  }
  return poems;
}

// poet.tang.1000.json -> 1000, for numeric order.
long file_number(const fs::path& p) {
  const std::string stem = p.stem().string();
  const auto dot = stem.rfind('.');
  try {
    return std::stol(stem.substr(dot + 1));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

std::vector<Poem> read_poems(const std::string& path) {
  SYN_CHECK(fs::exists(path), "poem data '{}' does not exist (fetch the Tang poems with: scripts/fetch-data tang-poems {})",
            path, path);
  if (!fs::is_directory(path)) return read_poem_file(path);
  std::vector<fs::path> tang, any;
  for (const auto& e : fs::directory_iterator(path)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || e.path().extension() != ".json") continue;
    (name.starts_with("poet.tang.") ? tang : any).push_back(e.path());
  }
  std::vector<fs::path>& files = tang.empty() ? any : tang;
  SYN_CHECK(!files.empty(), "'{}' holds no poet.tang.*.json or other .json files (fetch them with: scripts/fetch-data "
            "tang-poems {})", path, path);
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    const long na = file_number(a), nb = file_number(b);
    return na != nb ? na < nb : a < b;
  });
  std::vector<Poem> poems;
  for (const auto& f : files) {
    auto part = read_poem_file(f.string());
    poems.insert(poems.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return poems;
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
  return (c >= 0x2000 && c <= 0x206F)     // general punctuation (— … “ ”)
         || (c >= 0x3000 && c <= 0x303F)  // CJK symbols and punctuation (。、「」《》)
         || (c >= 0xFE10 && c <= 0xFE1F) || (c >= 0xFE30 && c <= 0xFE4F)  // vertical and compatibility forms
         || (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20)  // fullwidth ！（），．／：；？
         || (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) || c == 0x00B7 || c == 0xFFFD;
}

std::optional<VerseShape> regulated_verse(std::u32string_view text) {
  // Lines end in ， or 。; count the characters of each.
  std::vector<std::size_t> lengths;
  std::vector<char32_t> marks;
  std::size_t n = 0;
  for (char32_t c : text) {
    if (c == U'，' || c == U'。') {
      lengths.push_back(n);
      marks.push_back(c);
      n = 0;
    } else if (is_punctuation(c)) {
      return std::nullopt;
    } else {
      ++n;
    }
  }
  if (n != 0 || (lengths.size() != 4 && lengths.size() != 8)) return std::nullopt;
  const std::size_t form = lengths[0];
  if (form != 5 && form != 7) return std::nullopt;
  for (std::size_t i = 0; i < lengths.size(); ++i)
    if (lengths[i] != form || marks[i] != (i % 2 == 0 ? U'，' : U'。')) return std::nullopt;
  return VerseShape{static_cast<int>(form), static_cast<int>(lengths.size())};
}

std::vector<std::u32string> to_simplified(const std::vector<std::u32string>& texts) {
  // One text per line through `opencc -c t2s.json` (texts hold no newlines; any are replaced by spaces).
  const fs::path dir = fs::temp_directory_path() / fmt::format("synapse-opencc-{}", ::getpid());
  fs::create_directories(dir);
  const fs::path in = dir / "in.txt", out = dir / "out.txt";
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  {
    std::ofstream f(in, std::ios::binary);
    for (auto t : texts) {
      std::replace(t.begin(), t.end(), U'\n', U' ');
      f << data::encode_utf8(t) << '\n';
    }
    SYN_CHECK(f.good(), "cannot write '{}' for OpenCC", in.string());
  }
  const std::string cmd = fmt::format("opencc -c t2s.json -i '{}' -o '{}' 2>&1", in.string(), out.string());
  FILE* p = ::popen(cmd.c_str(), "r");
  SYN_CHECK(p != nullptr, "cannot run OpenCC ('{}')", cmd);
  std::string msg;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) msg += buf;
  const int rc = ::pclose(p);
  SYN_CHECK(rc == 0, "simplified characters need OpenCC's command 'opencc' (Debian package opencc); '{}' failed: {}", cmd,
            msg.empty() ? fmt::format("exit status {}", rc) : msg);
  const std::u32string all = data::read_utf8_file(out.string());
  std::vector<std::u32string> result;
  std::u32string line;
  for (char32_t c : all) {
    if (c == U'\n') {
      result.push_back(std::move(line));
      line.clear();
    } else {
      line.push_back(c);
    }
  }
  if (!line.empty()) result.push_back(std::move(line));
  SYN_CHECK(result.size() == texts.size(), "OpenCC returned {} texts for {}", result.size(), texts.size());
  return result;
}

// ---- sampling ----
void check_sample_options(const SampleOptions& o) {
  SYN_CHECK(std::isfinite(o.temperature) && o.temperature > 0,
            "--temperature: {} is not allowed; it must be a number above 0 (e.g. 0.8)", o.temperature);
  SYN_CHECK(o.top_k >= 0, "--top-k: {} is not allowed; it must be at least 1 (or 0 for all tokens)", o.top_k);
}

namespace {

std::string quoted(char32_t c) { return fmt::format("'{}' (U+{:04X})", data::encode_utf8(c), static_cast<std::uint32_t>(c)); }

// Draws among the tokens allowed[id] from logits / temperature, keeping the top_k best; NaN logits
// count as -inf and when no allowed token has a finite logit, one is drawn uniformly. Never returns a
// token that is not allowed (`allowed` must hold at least one).
class Sampler {
 public:
  explicit Sampler(const SampleOptions& o) : o_(o), rng_(o.seed) {}
  std::int64_t draw(const std::vector<float>& logits, const std::vector<bool>& allowed) {
    cand_.clear();
    for (std::size_t i = 0; i < allowed.size(); ++i) {
      if (!allowed[i]) continue;
      const float l = i < logits.size() ? logits[i] : -std::numeric_limits<float>::infinity();
      cand_.emplace_back(std::isnan(l) ? -std::numeric_limits<double>::infinity() : static_cast<double>(l) / o_.temperature,
                         static_cast<std::int64_t>(i));
    }
    SYN_CHECK(!cand_.empty(), "sampling: no token is allowed here");
    std::sort(cand_.begin(), cand_.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    if (o_.top_k > 0 && static_cast<std::size_t>(o_.top_k) < cand_.size()) cand_.resize(static_cast<std::size_t>(o_.top_k));
    const double top = cand_.front().first;
    std::vector<double> w;
    w.reserve(cand_.size());
    for (const auto& [l, id] : cand_) w.push_back(std::isfinite(top) ? std::exp(l - top) : 1.0);
    std::discrete_distribution<std::size_t> d(w.begin(), w.end());
    return cand_[d(rng_)].second;
  }

 private:
  SampleOptions o_;
  std::mt19937_64 rng_;
  std::vector<std::pair<double, std::int64_t>> cand_;
};

// Characters that may fill a verse line or a sampled text: every vocabulary id that is a character,
// without punctuation (for verse).
std::vector<bool> character_ids(const data::Vocabulary& vocab, bool allow_punctuation) {
  std::vector<bool> ok(static_cast<std::size_t>(vocab.size()), false);
  for (std::int64_t id = data::Vocabulary::kNumSpecial; id < vocab.size(); ++id)
    ok[static_cast<std::size_t>(id)] = allow_punctuation || !is_punctuation(vocab.character(id));
  return ok;
}

}  // namespace

std::u32string write_verse(const NextLogits& next, const data::Vocabulary& vocab, const VerseOptions& o) {
  SYN_CHECK(o.form == 5 || o.form == 7, "--form: {} is not allowed; a line has 5 or 7 characters", o.form);
  SYN_CHECK(o.lines == 4 || o.lines == 8, "--lines: {} is not allowed; a poem has 4 or 8 lines", o.lines);
  check_sample_options(o.sample);
  SYN_CHECK(o.start.size() <= 1, "--start: give one character, got {}", o.start.size());
  SYN_CHECK(o.acrostic.empty() || static_cast<int>(o.acrostic.size()) == o.lines,
            "--acrostic: {} characters for {} lines; give one character per line", o.acrostic.size(), o.lines);
  SYN_CHECK(o.start.empty() || o.acrostic.empty() || o.start[0] == o.acrostic[0],
            "--start {} and --acrostic {} disagree on the first character", data::encode_utf8(o.start),
            data::encode_utf8(o.acrostic));
  for (const auto& [what, chars] : {std::pair{"start", &o.start}, std::pair{"acrostic", &o.acrostic}})
    for (char32_t c : *chars) {
      SYN_CHECK(vocab.contains(c), "the {} character {} is not in the model's vocabulary ({} characters); choose another",
                what, quoted(c), vocab.chars().size());
      SYN_CHECK(!is_punctuation(c), "the {} character {} is punctuation, not a character of a poem", what, quoted(c));
    }
  const std::vector<bool> allowed = character_ids(vocab, false);
  SYN_CHECK(std::find(allowed.begin(), allowed.end(), true) != allowed.end(),
            "the model's vocabulary holds no character a poem can use");

  Sampler sampler(o.sample);
  std::u32string poem;
  std::vector<float> logits = next(data::Vocabulary::kBos);
  for (int line = 0; line < o.lines; ++line) {
    for (int pos = 0; pos < o.form; ++pos) {
      std::int64_t id;
      if (pos == 0 && !o.acrostic.empty()) id = vocab.id(o.acrostic[static_cast<std::size_t>(line)]);
      else if (pos == 0 && line == 0 && !o.start.empty()) id = vocab.id(o.start[0]);
      else id = sampler.draw(logits, allowed);
      poem.push_back(vocab.character(id));
      logits = next(id);
    }
    const char32_t mark = line % 2 == 0 ? U'，' : U'。';
    poem.push_back(mark);
    if (line + 1 < o.lines) logits = next(vocab.id(mark));  // <unk> when the vocabulary lacks it
  }
  return poem;
}

std::u32string sample_text(const NextLogits& next, const data::Vocabulary& vocab, std::u32string_view prime,
                           std::int64_t length, const SampleOptions& o) {
  check_sample_options(o);
  SYN_CHECK(length >= 0, "--length: {} is not allowed; it must be 0 or more", length);
  SYN_CHECK(!prime.empty(), "--prime: give at least one character to start from");
  for (char32_t c : prime)
    SYN_CHECK(vocab.contains(c), "the prime character {} is not in the model's vocabulary; choose another", quoted(c));
  const std::vector<bool> allowed = character_ids(vocab, true);
  SYN_CHECK(vocab.size() > data::Vocabulary::kNumSpecial, "the model's vocabulary holds no characters");
  Sampler sampler(o);
  std::u32string out(prime);
  std::vector<float> logits;
  for (char32_t c : prime) logits = next(vocab.id(c));
  for (std::int64_t i = 0; i < length; ++i) {
    const std::int64_t id = sampler.draw(logits, allowed);
    out.push_back(vocab.character(id));
    logits = next(id);
  }
  return out;
}

}  // namespace synapse::apps
