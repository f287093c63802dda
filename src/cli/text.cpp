// synapse text train / sample: a character-level language model on any UTF-8 text (char-rnn).
#include "cli/commands.h"
#include "synapse/poem.h"

namespace synapse::cli {
namespace {

struct TextTrainArgs {
  std::string file;
  apps::LmTrainOptions train;
  std::int64_t seq_len = 100;
  std::int64_t min_count = 1;
  TextTrainArgs() {
    train.batch = 32;
    train.logdir = "runs/text";
    train.kind = "text";
    train.model = {.embed = 64, .units = 256};
  }
};

int run_text_train(TextTrainArgs a) {
  const std::u32string text = data::read_utf8_file(a.file);
  const apps::LmData d = apps::prepare_stream(text, {.seq_len = a.seq_len, .min_count = a.min_count});
  fmt::print("data: {} characters from {}; vocabulary {} characters + 4 special tokens; {} windows of {} to train, {} "
             "held out\n",
             text.size(), a.file, d.vocab.chars().size(), d.train_texts, a.seq_len, d.valid_texts);
  a.train.metadata = {{"data", a.file}};
  apps::train_char_lm(d, a.train);
  return 0;
}

struct TextSampleArgs {
  std::string run;
  std::string prime;
  std::int64_t length = 200;
  apps::SampleOptions sample{.temperature = 0.8};
};

int run_text_sample(const TextSampleArgs& a) {
  apps::check_sample_options(a.sample);
  apps::LoadedLm lm = apps::load_char_lm(a.run);
  const std::u32string out =
      apps::sample_text(lm.stepper(), lm.vocab, data::decode_utf8(a.prime, "--prime"), a.length, a.sample);
  fmt::print("{}\n", data::encode_utf8(out));
  return 0;
}

}  // namespace

Command add_text(CLI::App& app) {
  auto* sub = app.add_subcommand("text", "A character-level LSTM language model on any UTF-8 text (char-rnn)");
  sub->require_subcommand(1);

  auto t = std::make_shared<TextTrainArgs>();
  auto* tr = sub->add_subcommand("train", "Train on a UTF-8 text file (the last 5% held out)");
  tr->add_option("file", t->file, "UTF-8 text file")->required();
  add_lm_train_options(tr, t->train, t->seq_len);
  tr->add_option("--min-count", t->min_count, "Rarer characters become <unk>")->capture_default_str()
      ->check(integer_in(1, 1000000000));

  auto s = std::make_shared<TextSampleArgs>();
  auto* sa = sub->add_subcommand("sample", "Continue a text with a trained model");
  sa->add_option("run", s->run, "Run folder (or model file) of 'synapse text train'")->required();
  sa->add_option("--prime", s->prime, "Text to start from")->required();
  sa->add_option("--length", s->length, "Characters to draw")->capture_default_str()
      ->check(integer_in(0, 1000000));
  add_sample_options(sa, s->sample);

  return {sub, [sub, tr, t, s] { return sub->got_subcommand(tr) ? run_text_train(*t) : run_text_sample(*s); }};
}

}  // namespace synapse::cli
