// synapse stylize CONTENT STYLE -o OUT: neural style transfer (the workflow lives in apps, synapse/stylize.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "cli/commands.h"
#include "synapse/stylize.h"

namespace synapse::cli {
namespace {

struct StylizeArgs {
  std::string content, style, output, network, content_layers, style_layers, mean, std_dev;
  apps::StylizeOptions o;
  int save_every = 0;
  float scale = 1.0f;
  bool bgr = false, list_layers = false, no_fold = false, style_weight_given = false, tv_weight_given = false;
  std::uint64_t network_seed = 1;
  std::string random_widths = "32,64,128,128", random_convs = "2,2,2,2";
};

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

std::vector<float> three_numbers(const std::string& s, const char* flag) {
  std::vector<float> v;
  for (const auto& p : split_names(s)) {
    try {
      std::size_t used = 0;
      v.push_back(std::stof(p, &used));
      if (used != p.size()) throw std::invalid_argument(p);
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: '{}' is not a number", flag, p));
    }
  }
  if (v.size() != 3) throw Error(fmt::format("{}: expected three comma-separated numbers (R,G,B), found '{}'", flag, s));
  return v;
}

long parse_count(const std::string& s, const char* flag) {
  try {
    std::size_t used = 0;
    const long v = std::stol(s, &used);
    if (used == s.size() && v >= 1 && v <= 4096) return v;
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("{}: '{}' is not an integer from 1 to 4096", flag, s));
}

// out.jpg -> out-0010.jpg
std::string intermediate_path(const std::string& output, int iteration) {
  const std::filesystem::path p(output);
  return (p.parent_path() / fmt::format("{}-{:04d}{}", p.stem().string(), iteration, p.extension().string())).string();
}

int run_stylize(StylizeArgs a) {
  std::unique_ptr<apps::FeatureNetwork> net;
  std::string why;
  if (a.network.empty() || a.network == "random") {
    std::vector<std::int64_t> widths;
    std::vector<int> convs;
    for (const auto& w : split_names(a.random_widths)) widths.push_back(static_cast<std::int64_t>(parse_count(w, "--random-widths")));
    for (const auto& c : split_names(a.random_convs)) convs.push_back(static_cast<int>(parse_count(c, "--random-convs")));
    // The best network on the machine: $SYNAPSE_DATA, then ./data (where scripts/fetch-data puts it).
    std::vector<std::string> dirs;
    if (a.network.empty()) {
      if (const char* d = std::getenv("SYNAPSE_DATA"); d != nullptr && *d != '\0') dirs.emplace_back(d);
      dirs.emplace_back("data");
    }
    apps::ChosenNetwork c = apps::default_feature_network(dirs, a.network_seed, widths, convs);
    net = std::move(c.network);
    why = a.network.empty() ? fmt::format("; the default: {}", c.reason)
                            : fmt::format(" (random weights, seed {}, asked for with --network random)", a.network_seed);
  } else {
    net = apps::load_feature_network(a.network, !a.no_fold);
  }
  if (!a.mean.empty()) net->preprocess.mean = three_numbers(a.mean, "--mean");
  if (!a.std_dev.empty()) net->preprocess.std = three_numbers(a.std_dev, "--std");
  net->preprocess.scale = a.scale;
  net->preprocess.bgr = a.bgr;
  if (a.list_layers) {
    for (const auto& n : net->layer_names()) fmt::print("{}\n", n);
    return 0;
  }
  if (a.output.empty()) throw Error("stylize: --output is required (a .jpg, .jpeg or .png file)");
  {
    // Refuse a bad output name before minutes of work.
    std::string ext = std::filesystem::path(a.output).extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext != ".jpg" && ext != ".jpeg" && ext != ".png")
      throw Error(fmt::format("--output '{}': unknown extension '{}', expected .jpg, .jpeg or .png", a.output, ext));
  }
  if (!a.style_weight_given && net->default_style_weight > 0) a.o.style_weight = net->default_style_weight;
  if (!a.tv_weight_given && net->default_tv_weight > 0) a.o.tv_weight = net->default_tv_weight;
  a.o.content_layers = split_names(a.content_layers);
  a.o.style_layers = split_names(a.style_layers);
  const Tensor content = data::read_image(a.content);
  const Tensor style = data::read_image(a.style);
  fmt::print("network: {}{}\n", net->describe(), why);
  fmt::print("weights: content {:g}, style {:g}, tv {:g}\n", a.o.content_weight, a.o.style_weight, a.o.tv_weight);
  fmt::print("content layers: {}\nstyle layers: {}\n",
             fmt::join(a.o.content_layers.empty() ? net->default_content_layers : a.o.content_layers, ", "),
             fmt::join(a.o.style_layers.empty() ? net->default_style_layers : a.o.style_layers, ", "));
  const bool tty = isatty(STDOUT_FILENO) != 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_line = start;
  a.o.on_iteration = [&](int it, double loss, const Tensor& image) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const double per = elapsed / it;
    if (tty) {
      constexpr int width = 30;
      const int filled = width * it / a.o.iterations;
      std::string bar(static_cast<std::size_t>(filled), '=');
      if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), '.');
      std::printf("\r%d/%d [%s] - loss %.4g - %.2fs/it\033[K", it, a.o.iterations, bar.c_str(), loss, per);
      if (it == a.o.iterations) std::printf("\n");
      std::fflush(stdout);
    } else if (it == a.o.iterations || now - last_line >= std::chrono::seconds(10)) {
      last_line = now;
      std::printf("  %d/%d - loss %.4g - %.2fs/it\n", it, a.o.iterations, loss, per);
      std::fflush(stdout);
    }
    if (a.save_every > 0 && it % a.save_every == 0 && it < a.o.iterations) {
      const std::string path = intermediate_path(a.output, it);
      data::write_image(path, apps::to_picture(image));
      if (!tty) fmt::print("  wrote {}\n", path);
    }
  };
  const apps::StylizeResult r = apps::stylize(*net, content, style, a.o);
  data::write_image(a.output, r.image);
  const int its = static_cast<int>(r.losses.size()) - 1;
  fmt::print("wrote {} ({}x{}): {} iterations, {} evaluations, {:.3f} s per iteration; loss {:.4g} -> {:.4g} "
             "(content {:.4g}, style {:.4g}, tv {:.4g})\n",
             a.output, r.image.dim(1), r.image.dim(0), its, r.evaluations, r.seconds / std::max(1, its), r.losses.front(),
             r.losses.back(), r.content, r.style, r.tv);
  return 0;
}

}  // namespace

Command add_stylize(CLI::App& app) {
  auto a = std::make_shared<StylizeArgs>();
  auto* sub = app.add_subcommand("stylize", "Neural style transfer (Gatys et al.): paint CONTENT in the manner of STYLE");
  sub->add_option("content", a->content, "Content image (PNG, JPEG, ...)")->required();
  sub->add_option("style", a->style, "Style image")->required();
  sub->add_option("-o,--output", a->output, "Output image: .jpg, .jpeg or .png");
  sub->add_option("--network", a->network,
                  "Feature network: an .onnx file, a Keras/TF.js model.json (or its folder), a .syn of import-keras, a "
                  "model file / run folder of the zoo, or 'random' (default: nsfwjs' MobileNetV2 from $SYNAPSE_DATA/nsfwjs "
                  "or data/nsfwjs when there, else a VGG-shaped network with random weights)");
  sub->add_flag("--no-fold-batch-norm", a->no_fold, "With --network: keep a Keras model's BatchNormalization layers (default: folded into the convolutions)");
  sub->add_option("--network-seed", a->network_seed, "Seed of the random network")->capture_default_str();
  sub->add_option("--random-widths", a->random_widths, "Default network: filters of each block (64,128,256,512,512: VGG19's)")
      ->capture_default_str();
  sub->add_option("--random-convs", a->random_convs, "Default network: convolutions of each block (2,2,4,4,4: VGG19's)")
      ->capture_default_str();
  sub->add_flag("--list-layers", a->list_layers, "Print the network's layer names and exit");
  sub->add_option("--size", a->o.size, "Longer side of the output in pixels")->capture_default_str()->check(integer_in(16, 8192));
  sub->add_option("--iterations", a->o.iterations, "L-BFGS iterations (or Adam steps)")->capture_default_str()->check(integer_in(1, 100000));
  sub->add_option("--content-weight", a->o.content_weight, "Weight of the content loss")->capture_default_str()->check(non_negative_number());
  sub->add_option("--style-weight", a->o.style_weight, "Weight of the style loss (default: the network's, else this)")->capture_default_str()->check(non_negative_number());
  sub->add_option("--tv-weight", a->o.tv_weight, "Weight of the total variation loss (default: the network's, else this)")->capture_default_str()->check(non_negative_number());
  sub->add_option("--content-layers", a->content_layers, "Comma-separated layer names (default: the network's)");
  sub->add_option("--style-layers", a->style_layers, "Comma-separated layer names (default: the network's)");
  sub->add_option("--optimizer", a->o.optimizer, "lbfgs or adam")->capture_default_str()->check(CLI::IsMember({"lbfgs", "adam"}));
  sub->add_option("--lr", a->o.learning_rate, "Adam's learning rate (pixels in [0, 1])")->capture_default_str()->check(positive_number());
  sub->add_option("--init", a->o.init, "Start from the content image or from noise")->capture_default_str()->check(CLI::IsMember({"content", "noise"}));
  sub->add_option("--seed", a->o.seed, "Seed of the noise start")->capture_default_str();
  sub->add_option("--save-every", a->save_every, "Also write the image every N iterations (OUT-0010.jpg, ...)")->check(integer_in(1, 100000));
  sub->add_option("--scale", a->scale, "Network preprocessing: pixels in [0, 1] times this (255 for 0..255 networks)")
      ->capture_default_str()->check(positive_number());
  sub->add_option("--mean", a->mean, "Network preprocessing: R,G,B means subtracted after scaling");
  sub->add_option("--std", a->std_dev, "Network preprocessing: R,G,B deviations divided by");
  sub->add_flag("--bgr", a->bgr, "Network preprocessing: feed channels as BGR");
  return {sub, [a, sub] {
            a->style_weight_given = sub->count("--style-weight") > 0;
            a->tv_weight_given = sub->count("--tv-weight") > 0;
            return run_stylize(*a);
          }};
}

}  // namespace synapse::cli
