#include <gtest/gtest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>

#include "gradcheck.h"
#include "synapse/poem.h"

using namespace synapse;
using synapse::testing::error_of;
using namespace synapse::apps;
using data::Vocabulary;

#ifndef SYNAPSE_TEST_POEMS
#error "SYNAPSE_TEST_POEMS (the folder of the tiny shipped corpus) must be defined"
#endif

namespace {

const Vocabulary& vocab() {
  static const Vocabulary v = Vocabulary::build({U"春花秋月何時了，往事知多少。小樓昨夜又東風？", U"山水雲天！"});
  return v;
}

// A model that puts all its weight on one class of tokens: whatever it likes most must never break
// the form. `kind` 0: <eos>; 1: punctuation; 2: <pad>/<unk>/<bos>; 3: NaN everywhere; 4: -inf for
// every character.
NextLogits adversary(int kind, int* calls) {
  return [kind, calls](std::int64_t) {
    ++*calls;
    const Vocabulary& v = vocab();
    std::vector<float> l(static_cast<std::size_t>(v.size()), 0.0f);
    for (std::int64_t id = 0; id < v.size(); ++id) {
      const bool special = v.is_special(id);
      const bool punct = !special && is_punctuation(v.character(id));
      float& x = l[static_cast<std::size_t>(id)];
      switch (kind) {
        case 0: x = id == Vocabulary::kEos ? 1000.0f : 0.0f; break;
        case 1: x = punct ? 1000.0f : -50.0f; break;
        case 2: x = (id == Vocabulary::kPad || id == Vocabulary::kUnk || id == Vocabulary::kBos) ? 1e30f : -1e30f; break;
        case 3: x = std::numeric_limits<float>::quiet_NaN(); break;
        default: x = special || punct ? 5.0f : -std::numeric_limits<float>::infinity(); break;
      }
    }
    return l;
  };
}

// Each line exactly `form` characters that are not punctuation, then ， (odd lines) or 。 (even).
void expect_well_formed(const std::u32string& poem, int form, int lines) {
  ASSERT_EQ(poem.size(), static_cast<std::size_t>((form + 1) * lines)) << data::encode_utf8(poem);
  for (int l = 0; l < lines; ++l) {
    for (int p = 0; p < form; ++p) {
      const char32_t c = poem[static_cast<std::size_t>(l * (form + 1) + p)];
      EXPECT_FALSE(is_punctuation(c)) << data::encode_utf8(poem);
      EXPECT_TRUE(vocab().contains(c)) << data::encode_utf8(poem);
    }
    EXPECT_EQ(poem[static_cast<std::size_t>(l * (form + 1) + form)], l % 2 == 0 ? U'，' : U'。') << data::encode_utf8(poem);
  }
  EXPECT_TRUE(regulated_verse(poem).has_value()) << data::encode_utf8(poem);
}

}  // namespace

TEST(Verse, AdversarialModelsStillGiveWellFormedVerse) {
  for (int kind = 0; kind < 5; ++kind)
    for (int form : {5, 7})
      for (int lines : {4, 8}) {
        int calls = 0;
        VerseOptions o;
        o.form = form;
        o.lines = lines;
        o.sample.seed = static_cast<std::uint64_t>(kind);
        o.sample.top_k = kind == 1 ? 3 : 0;
        const std::u32string poem = write_verse(adversary(kind, &calls), vocab(), o);
        SCOPED_TRACE(kind);
        expect_well_formed(poem, form, lines);
        EXPECT_LE(calls, (form + 1) * lines + 1);  // one step per token: it cannot loop
      }
}

TEST(Verse, StartAndAcrostic) {
  int calls = 0;
  VerseOptions o;
  o.start = U"春";
  std::u32string poem = write_verse(adversary(1, &calls), vocab(), o);
  expect_well_formed(poem, 5, 4);
  EXPECT_EQ(poem[0], U'春');

  o = {};
  o.form = 7;
  o.acrostic = U"春花秋月";
  poem = write_verse(adversary(0, &calls), vocab(), o);
  expect_well_formed(poem, 7, 4);
  for (int l = 0; l < 4; ++l) EXPECT_EQ(poem[static_cast<std::size_t>(l * 8)], o.acrostic[static_cast<std::size_t>(l)]);
}

TEST(Verse, ClearErrors) {
  int calls = 0;
  const auto next = adversary(0, &calls);
  auto err = [&](VerseOptions o) { return error_of([&] { write_verse(next, vocab(), o); }); };
  VerseOptions o;
  o.start = U"冬";
  EXPECT_NE(err(o).find("the start character '冬' (U+51AC) is not in the model's vocabulary"), std::string::npos);
  o = {};
  o.acrostic = U"春夏秋冬";
  EXPECT_NE(err(o).find("the acrostic character '夏' (U+590F) is not in the model's vocabulary"), std::string::npos);
  o = {};
  o.acrostic = U"春花";
  EXPECT_NE(err(o).find("--acrostic: 2 characters for 4 lines"), std::string::npos);
  o = {};
  o.start = U"，";
  EXPECT_NE(err(o).find("punctuation"), std::string::npos);
  o = {};
  o.form = 6;
  EXPECT_NE(err(o).find("--form: 6 is not allowed"), std::string::npos);
  o = {};
  o.lines = 5;
  EXPECT_NE(err(o).find("--lines: 5 is not allowed"), std::string::npos);
  o = {};
  o.sample.temperature = 0;
  EXPECT_NE(err(o).find("--temperature: 0 is not allowed"), std::string::npos);
  o.sample.temperature = std::nan("");
  EXPECT_NE(err(o).find("--temperature: nan is not allowed"), std::string::npos);
  o = {};
  o.sample.top_k = -1;
  EXPECT_NE(err(o).find("--top-k: -1 is not allowed"), std::string::npos);
  EXPECT_EQ(calls, 0);
}

TEST(Verse, SampleTextNeverDrawsSpecialTokens) {
  int calls = 0;
  const std::u32string out = sample_text(adversary(2, &calls), vocab(), U"春花", 50, {});
  ASSERT_EQ(out.size(), 52u);
  EXPECT_EQ(out.substr(0, 2), U"春花");
  EXPECT_EQ(out.find(U'\uFFFD'), std::u32string::npos);
  EXPECT_NE(error_of([&] { sample_text(adversary(2, &calls), vocab(), U"冬", 5, {}); }).find("'冬'"), std::string::npos);
}

TEST(Corpus, RegulatedVerseFilter) {
  EXPECT_EQ(regulated_verse(U"床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。")->form, 5);
  EXPECT_EQ(regulated_verse(U"床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。")->lines, 4);
  const auto seven = regulated_verse(U"兩個黃鸝鳴翠柳，一行白鷺上青天。窗含西嶺千秋雪，門泊東吳萬里船。"
                                     U"兩個黃鸝鳴翠柳，一行白鷺上青天。窗含西嶺千秋雪，門泊東吳萬里船。");
  ASSERT_TRUE(seven.has_value());
  EXPECT_EQ(seven->form, 7);
  EXPECT_EQ(seven->lines, 8);
  EXPECT_FALSE(regulated_verse(U"床前明月光，疑是地上霜。"));                             // 2 lines
  EXPECT_FALSE(regulated_verse(U"床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。床前明月光，疑是地上霜。"));  // 6
  EXPECT_FALSE(regulated_verse(U"床前明月光。疑是地上霜，舉頭望明月，低頭思故鄉。"));     // marks swapped
  EXPECT_FALSE(regulated_verse(U"床前明月光，疑是地上霜？舉頭望明月，低頭思故鄉。"));     // ？
  EXPECT_FALSE(regulated_verse(U"床前明月光，疑是地上。舉頭望明月，低頭思故鄉。"));       // 4 characters
  EXPECT_FALSE(regulated_verse(U"床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉"));       // no final 。
  EXPECT_FALSE(regulated_verse(U"床前明，疑是地，舉頭望，低頭思。"));                       // 3 characters
}

TEST(Corpus, ReadsTheShippedTinyCorpus) {
  const auto poems = read_poems(SYNAPSE_TEST_POEMS);
  ASSERT_EQ(poems.size(), 12u);
  EXPECT_EQ(poems[0].author, "李白");
  EXPECT_EQ(poems[0].title, "靜夜思");
  EXPECT_EQ(poems[0].text, U"床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。");
  int regulated = 0;
  for (const auto& p : poems) regulated += regulated_verse(p.text).has_value();
  EXPECT_EQ(regulated, 10);
  EXPECT_NE(error_of([] { read_poems("/nonexistent/poems"); }).find("scripts/fetch-data tang-poems"), std::string::npos);
}

TEST(Corpus, PrepareTextsSplitsAndBuildsVocabularyFromTrainingOnly) {
  std::vector<std::u32string> texts;
  for (const auto& p : read_poems(SYNAPSE_TEST_POEMS))
    if (regulated_verse(p.text)) texts.push_back(p.text);
  const LmData d = prepare_texts(texts, {.seq_len = 65});
  EXPECT_EQ(d.train_texts + d.valid_texts, 10);
  EXPECT_EQ(d.valid_texts, 1);
  EXPECT_EQ(d.train.inputs.shape(), (Shape{9, 65}));
  EXPECT_EQ(d.train.inputs.at<std::int64_t>({0, 0}), Vocabulary::kBos);
  // Every training poem is <bos> + characters + <eos>: 24 + 1 or 32 + 1 or 48 + 1 targets.
  for (std::int64_t l : d.train.lengths.to_vector<std::int64_t>()) EXPECT_TRUE(l == 25 || l == 33 || l == 49) << l;
}

TEST(Corpus, SimplifiedThroughOpenCC) {
  if (std::system("command -v opencc > /dev/null 2>&1") != 0) GTEST_SKIP() << "OpenCC's command is not installed";
  const auto s = to_simplified({U"舉頭望明月，低頭思故鄉。", U"黃河入海流"});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], U"举头望明月，低头思故乡。");
  EXPECT_EQ(s[1], U"黄河入海流");
}

// ---- the report of a run ----
namespace {

std::string read_file_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string unescape(std::string s) {
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""},
                                 {"&#39;", "'"}, {"&amp;", "&"}})
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
      s.replace(pos, from.size(), to);
  return s;
}

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

// The <pre> blocks of the text samples.
std::vector<std::string> samples_of(const std::string& html) {
  std::vector<std::string> out;
  const std::regex re(R"re(<figure class="text-sample"><figcaption>[^<]*</figcaption><pre>([^<]*)</pre></figure>)re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back(unescape((*it)[1]));
  return out;
}

}  // namespace

TEST(Report, PoemRunReportShowsPerplexityBaselinesAndWellFormedPoems) {
  std::vector<std::u32string> texts;
  for (const auto& p : read_poems(SYNAPSE_TEST_POEMS))
    if (regulated_verse(p.text)) texts.push_back(p.text);
  const LmData d = prepare_texts(texts, {.seq_len = 49});
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("synapse_test_lm_report_{}", ::getpid());
  std::filesystem::remove_all(dir);
  LmTrainOptions o;
  o.epochs = 3;
  o.batch = 4;
  o.logdir = dir.string();
  o.kind = "poem";
  o.model = {.embed = 8, .units = 16};
  o.verbose = 0;
  const LmTrainResult r = train_char_lm(d, o);
  const std::string html = read_file_text((dir / "report.html").string());
  ASSERT_FALSE(html.empty());

  // The epoch table: one row per epoch, the held-out perplexity of the last one is the result's.
  const std::regex row(R"re(<tr><td>(\d+)</td><td>\d+</td><td>[0-9.]+ s</td><td>([0-9.]+)</td><td>([0-9.]+)</td><td>([0-9.]+)</td>)re");
  std::vector<double> ppl;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), row); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ(std::stoi((*it)[1]), static_cast<int>(ppl.size()) + 1);
    // The held-out loss column is the log of the perplexity column.
    EXPECT_NEAR(std::log(std::stod((*it)[4])), std::stod((*it)[3]), 1e-3);
    ppl.push_back(std::stod((*it)[4]));
  }
  ASSERT_EQ(ppl.size(), 3u);
  EXPECT_EQ(fmt::format("{:.2f}", ppl.back()), fmt::format("{:.2f}", r.perplexity));
  // Headline and baselines, as train_char_lm prints them.
  EXPECT_NE(html.find(fmt::format(R"(<div class="value">{:.1f}</div>)", r.perplexity)), std::string::npos);
  EXPECT_NE(html.find(fmt::format(R"(<div class="value">{:.1f}</div>)", r.bigram)), std::string::npos);
  EXPECT_NE(html.find(fmt::format("unigram {:.1f} · interpolated {:.1f}", r.unigram, r.interpolated)), std::string::npos);
  EXPECT_NE(html.find(fmt::format("{:.2f}x the bigram", r.perplexity / r.bigram)), std::string::npos);
  // Two charts; the three baselines dashed in the perplexity chart, the bigram's in the loss chart.
  EXPECT_EQ(count_of(html, "<svg class=\"chart line-chart\""), 2u);
  EXPECT_EQ(count_of(html, "stroke-dasharray=\"7 5\""), 4u);
  EXPECT_NE(html.find("<pre class=\"summary\">Model: "), std::string::npos);
  // Four poems, well formed, the same when the report is written again (fixed seeds).
  const std::vector<std::string> poems = samples_of(html);
  ASSERT_EQ(poems.size(), 4u);
  for (std::size_t i = 0; i < poems.size(); ++i) {
    std::u32string poem = data::decode_utf8(poems[i]);
    EXPECT_EQ(std::count(poem.begin(), poem.end(), U'\n'), 4) << poems[i];  // one verse line per text line
    std::erase(poem, U'\n');
    const auto shape = regulated_verse(poem);
    ASSERT_TRUE(shape.has_value()) << poems[i];
    EXPECT_EQ(shape->form, i % 2 == 0 ? 5 : 7) << poems[i];
    EXPECT_EQ(shape->lines, 4) << poems[i];
    for (char32_t c : poem) EXPECT_TRUE(is_punctuation(c) || d.vocab.contains(c)) << poems[i];
  }
  LmReportOptions ro;
  ro.output = (dir / "again.html").string();
  const std::string again = write_lm_report(dir.string(), ro);
  EXPECT_EQ(samples_of(read_file_text(again)), poems);
  std::filesystem::remove_all(dir);
}
