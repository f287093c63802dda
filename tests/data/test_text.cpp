#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <unistd.h>

#include "gradcheck.h"
#include "synapse/io.h"
#include "synapse/text.h"

using namespace synapse;
using synapse::testing::error_of;
using namespace synapse::data;
namespace fs = std::filesystem;

TEST(Utf8, DecodesAndEncodesEveryLength) {
  const std::string s = "a\xC3\xA9\xE6\x98\xA5\xF0\x9F\x98\x80";  // a é 春 😀
  const std::u32string cps = decode_utf8(s);
  ASSERT_EQ(cps.size(), 4u);
  EXPECT_EQ(cps[0], U'a');
  EXPECT_EQ(cps[1], U'é');
  EXPECT_EQ(cps[2], U'春');
  EXPECT_EQ(cps[3], U'\U0001F600');
  EXPECT_EQ(encode_utf8(cps), s);
  EXPECT_EQ(decode_utf8("\xEF\xBB\xBFx"), U"x");  // byte-order mark skipped
}

TEST(Utf8, InvalidBytesNameSourceAndOffset) {
  EXPECT_NE(error_of([] { decode_utf8("ab\x80", "poems.txt"); }).find("poems.txt: invalid UTF-8 at byte offset 2"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("ab\xE6\x98", "f"); }).find("byte offset 2: the text ends inside"), std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("\xE6x\xA5", "f"); }).find("byte offset 1: byte 0x78 is not a continuation"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("\xC0\xAF", "f"); }).find("overlong"), std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("\xED\xA0\x80", "f"); }).find("U+D800 is not a character"), std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("\xFF", "f"); }).find("byte 0xFF cannot start"), std::string::npos);

  const fs::path p = fs::temp_directory_path() / ("bad_utf8_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(p, std::ios::binary) << "\xE6\x98\xA5\xE6";
  EXPECT_NE(error_of([&] { read_utf8_file(p.string()); }).find(p.string() + ": invalid UTF-8 at byte offset 3"),
            std::string::npos);
  fs::remove(p);
}

TEST(Vocabulary, BuildsByFrequencyWithSpecials) {
  const Vocabulary v = Vocabulary::build({U"abcab", U"a"});  // a:3 b:2 c:1
  EXPECT_EQ(v.size(), 7);
  EXPECT_EQ(v.id(U'a'), 4);
  EXPECT_EQ(v.id(U'b'), 5);
  EXPECT_EQ(v.id(U'c'), 6);
  EXPECT_EQ(v.id(U'z'), Vocabulary::kUnk);
  EXPECT_EQ(v.encode(U"az", true, true), (std::vector<std::int64_t>{1, 4, 3, 2}));
  EXPECT_EQ(v.decode({1, 4, 3, 5, 2, 0}), U"a\uFFFDb");
  EXPECT_EQ(v.decode(v.encode(U"cab")), U"cab");

  const Vocabulary m = Vocabulary::build({U"abcab", U"a"}, {.min_count = 2});
  EXPECT_EQ(m.size(), 6);
  EXPECT_FALSE(m.contains(U'c'));
  const Vocabulary s = Vocabulary::build({U"abcab", U"a"}, {.max_size = 5});
  EXPECT_EQ(s.chars(), std::vector<char32_t>{U'a'});
  EXPECT_THROW(v.character(Vocabulary::kEos), Error);
  EXPECT_THROW(v.decode({7}), Error);
}

TEST(Vocabulary, RoundTripThroughCheckpoint) {
  const Vocabulary v = Vocabulary::build({U"春眠不覺曉，處處聞啼鳥。😀"});
  io::Checkpoint c;
  c.tensors["vocabulary"] = v.to_tensor();
  const fs::path p = fs::temp_directory_path() / ("vocab_" + std::to_string(::getpid()) + ".syn");
  io::save_checkpoint(p.string(), c);
  const Vocabulary back = Vocabulary::from_tensor(io::load_checkpoint(p.string()).tensors.at("vocabulary"));
  fs::remove(p);
  EXPECT_EQ(back.chars(), v.chars());
  EXPECT_EQ(back.encode(U"處處春😀"), v.encode(U"處處春😀"));
  EXPECT_THROW(Vocabulary::from_tensor(zeros({3})), Error);                                       // float32
  EXPECT_THROW(Vocabulary::from_tensor(from_vector(std::vector<std::int64_t>{65, 65}, {2})), Error);  // duplicate
}

TEST(Sequences, LanguageModelPairsPadAndTruncate) {
  const Sequences s = language_model_pairs({{1, 4, 5, 2}, {1, 6, 7, 8, 9, 2}}, 4);
  EXPECT_EQ(s.inputs.shape(), (Shape{2, 4}));
  EXPECT_EQ(s.inputs.to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 4, 5, 0, 1, 6, 7, 8}));
  EXPECT_EQ(s.targets.to_vector<std::int64_t>(), (std::vector<std::int64_t>{4, 5, 2, 0, 6, 7, 8, 9}));
  EXPECT_EQ(s.lengths.to_vector<std::int64_t>(), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(s.tokens(), 7);
  EXPECT_THROW(language_model_pairs({{1}}, 4), Error);

  const auto w = windows({10, 11, 12, 13, 14, 15}, 2);  // overlapping by one, last one short
  EXPECT_EQ(w, (std::vector<std::vector<std::int64_t>>{{10, 11, 12}, {12, 13, 14}, {14, 15}}));
}

TEST(Sequences, ShuffledBatchesKeepRowsTogether) {
  std::vector<std::vector<std::int64_t>> seqs;
  for (std::int64_t i = 0; i < 10; ++i) seqs.push_back(std::vector<std::int64_t>(static_cast<std::size_t>(2 + i % 4), 10 + i));
  const Sequences s = language_model_pairs(seqs, 3);
  std::set<std::int64_t> seen;
  std::vector<std::int64_t> first_order;
  for (const Example& b : sequence_batches(s, 4, 7)) {
    ASSERT_EQ(b.size(), 3u);
    const auto x = b[0].to_vector<std::int64_t>();
    const auto len = b[2].to_vector<std::int64_t>();
    for (std::int64_t r = 0; r < b[0].dim(0); ++r) {
      const std::int64_t id = x[static_cast<std::size_t>(r * 3)];
      EXPECT_EQ(len[static_cast<std::size_t>(r)], std::min<std::int64_t>(3, 1 + (id - 10) % 4));
      seen.insert(id);
      first_order.push_back(id);
    }
  }
  EXPECT_EQ(seen.size(), 10u);
  std::vector<std::int64_t> again;
  for (const Example& b : sequence_batches(s, 4, 7))
    for (std::int64_t r = 0; r < b[0].dim(0); ++r) again.push_back(b[0].to_vector<std::int64_t>()[static_cast<std::size_t>(r * 3)]);
  EXPECT_EQ(again, first_order);  // same seed, same first-epoch order
  std::vector<std::int64_t> sorted = first_order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(sorted, first_order);  // shuffled
}

TEST(Ngram, PerplexityByHand) {
  // Vocabulary size 6 (ids 4 'a', 5 'b'): outcomes are every id but <pad> and <bos>: 4 of them.
  // Training pairs of <bos> a b <eos> and <bos> a a <eos>: (1,4) (4,5) (5,2) (1,4) (4,4) (4,2).
  const Sequences train = language_model_pairs({{1, 4, 5, 2}, {1, 4, 4, 2}}, 5);
  const Sequences test = language_model_pairs({{1, 5, 2}}, 5);  // pairs (1,5) (5,2)
  NgramModel uni(1, 6, 1.0);
  uni.fit(train);
  // counts: a(4)=3, b(5)=1, eos(2)=2, unk(3)=0; N = 6; P(w) = (c + 1) / (6 + 4)
  EXPECT_NEAR(uni.probability(0, 4), 0.4, 1e-12);
  EXPECT_NEAR(uni.perplexity(test), std::exp(-(std::log(0.2) + std::log(0.3)) / 2), 1e-9);
  NgramModel bi(2, 6, 0.5);
  bi.fit(train);
  // P(b | <bos>) = (0 + .5) / (2 + 2) = 0.125; P(<eos> | b) = (1 + .5) / (1 + 2) = 0.5
  EXPECT_NEAR(bi.probability(1, 5), 0.125, 1e-12);
  EXPECT_NEAR(bi.perplexity(test), std::exp(-(std::log(0.125) + std::log(0.5)) / 2), 1e-9);
  EXPECT_EQ(bi.probability(4, 0), 0.0);
  // Interpolated, lambda 0.5 with the add-1 unigram: P(b | <bos>) = 0.5 * 0 / 2 + 0.5 * 0.2;
  // P(<eos> | b) = 0.5 * 1 / 1 + 0.5 * 0.3.
  NgramModel jm(2, 6, 1.0, 0.5);
  jm.fit(train);
  EXPECT_NEAR(jm.perplexity(test), std::exp(-(std::log(0.1) + std::log(0.65)) / 2), 1e-9);
  EXPECT_THROW(NgramModel(3, 6), Error);
}
