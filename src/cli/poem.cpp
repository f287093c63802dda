// synapse poem train / write: an LSTM that writes Tang poems (the workflow lives in apps, synapse/poem.h).
#include "cli/commands.h"
#include "synapse/poem.h"

namespace synapse::cli {
namespace {

struct PoemTrainArgs {
  std::string data = "data/tang-poems";
  apps::LmTrainOptions train;
  std::int64_t seq_len = 65;  // <bos> + the longest regulated poem (8 lines of 7 characters + punctuation)
  bool simplified = false;
  bool all = false;
  PoemTrainArgs() {
    train.epochs = 20;
    train.batch = 64;
    train.minutes = 30;
    train.logdir = "runs/poem";
    train.kind = "poem";
    train.model = {.embed = 128, .units = 384};
  }
};

int run_poem_train(PoemTrainArgs a) {
  const std::vector<apps::Poem> poems = apps::read_poems(a.data);
  std::vector<std::u32string> texts;
  texts.reserve(poems.size());
  for (const auto& p : poems) texts.push_back(p.text);
  if (a.simplified) texts = apps::to_simplified(texts);
  std::vector<std::u32string> kept;
  for (auto& t : texts)
    if (a.all ? !t.empty() : apps::regulated_verse(t).has_value()) kept.push_back(std::move(t));
  const bool root = dist::is_root();  // under mpirun: data-parallel, rank 0 prints
  if (root)
    fmt::print("data: {} poems from {}, {} {}{}\n", poems.size(), a.data, kept.size(),
             a.all ? "non-empty" : "regulated verse (4 or 8 lines of 5 or 7 characters)",
             a.simplified ? ", simplified characters (OpenCC t2s)" : "");
  const apps::LmData d = apps::prepare_texts(kept, {.seq_len = a.seq_len});
  if (root)
    fmt::print("vocabulary: {} characters + 4 special tokens; {} poems to train, {} held out\n", d.vocab.chars().size(),
               d.train_texts, d.valid_texts);
  a.train.metadata = {{"data", a.data}, {"simplified", a.simplified ? "1" : "0"}};
  apps::train_char_lm(d, a.train);
  return 0;
}

struct PoemWriteArgs {
  std::string run;
  std::string start, acrostic;
  int form = 5;
  int lines = 0;
  apps::SampleOptions sample{.temperature = 0.8};
  int count = 1;
};

int run_poem_write(const PoemWriteArgs& a) {
  apps::VerseOptions v;
  v.form = a.form;
  v.start = data::decode_utf8(a.start, "--start");
  v.acrostic = data::decode_utf8(a.acrostic, "--acrostic");
  v.lines = a.lines > 0 ? a.lines : (v.acrostic.empty() ? 4 : static_cast<int>(v.acrostic.size()));
  v.sample = a.sample;
  apps::check_sample_options(v.sample);
  apps::LoadedLm lm = apps::load_char_lm(a.run);
  for (int i = 0; i < a.count; ++i) {
    v.sample.seed = a.sample.seed + static_cast<std::uint64_t>(i);
    const std::u32string poem = apps::write_verse(lm.stepper(), lm.vocab, v);
    fmt::print("{}{}", i ? "\n" : "", apps::verse_lines(poem));
  }
  return 0;
}

}  // namespace

Command add_poem(CLI::App& app) {
  auto* sub = app.add_subcommand("poem", "An LSTM that writes Tang poems: train it, then write poems");
  sub->require_subcommand(1);

  auto t = std::make_shared<PoemTrainArgs>();
  auto* tr = sub->add_subcommand("train", "Train the poem model on the Tang poems (scripts/fetch-data tang-poems)");
  tr->add_option("--data", t->data, "Folder with poet.tang.*.json (or one JSON file of poems)")->capture_default_str();
  add_lm_train_options(tr, t->train, t->seq_len);
  tr->add_flag("--simplified", t->simplified, "Convert to simplified characters with OpenCC first");
  tr->add_flag("--all", t->all, "Train on every poem, not only regulated verse");

  auto w = std::make_shared<PoemWriteArgs>();
  auto* wr = sub->add_subcommand("write", "Write poems with a trained model");
  wr->add_option("run", w->run, "Run folder (or model file) of 'synapse poem train'")->required();
  wr->add_option("--start", w->start, "First character, e.g. 春");
  wr->add_option("--acrostic", w->acrostic, "One character to start each line (藏头诗), e.g. 春夏秋冬");
  wr->add_option("--form", w->form, "Characters per line: 5 or 7")->capture_default_str()->check(CLI::IsMember({5, 7}));
  wr->add_option("--lines", w->lines, "Lines: 4 or 8 (default: the acrostic's length, else 4)")
      ->check(CLI::IsMember({4, 8}));
  add_sample_options(wr, w->sample);
  wr->add_option("--count", w->count, "Poems to write")->capture_default_str()->check(integer_in(1, 10000));

  return {sub, [sub, tr, t, w] { return sub->got_subcommand(tr) ? run_poem_train(*t) : run_poem_write(*w); }};
}

}  // namespace synapse::cli
