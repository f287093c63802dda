// synapse eval CHECKPOINT: test accuracy, per-class accuracy and the confusion matrix of a trained model.
#include "cli/commands.h"

namespace synapse::cli {

Command add_eval(CLI::App& app) {
  struct Args {
    std::string checkpoint;
    std::string data = "data/mnist";
    std::string precision = "fp32";
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("eval", "Evaluate a trained model on the test set");
  sub->add_option("checkpoint", a->checkpoint, "A model file or a run folder (its model.syn)")->required();
  sub->add_option("--data", a->data, "The test data: MNIST IDX files, CIFAR-10 batches or the image folder, as the model was trained")->capture_default_str();
  add_precision_option(sub, a->precision, "of the model");
  return {sub, [a] {
            const MatmulPrecisionGuard precision(precision_flag(a->precision));
            const zoo::Trained t = zoo::load_trained(a->checkpoint);
            const auto [x, y] = zoo::load_test_set(t.checkpoint, a->data);  // MNIST, CIFAR-10 or an image folder
            const auto classes = t.checkpoint.metadata.find("classes");
            train::ConfusionMatrix cm(classes == t.checkpoint.metadata.end() ? 10 : std::stoi(classes->second));
            cm.update(train::predict(*t.model, x), y);
            const auto trained = t.checkpoint.metadata.find("precision");
            fmt::print("model: {} ({}), trained in {}, evaluated in {}\n", t.name, t.path,
                       trained != t.checkpoint.metadata.end() ? trained->second : "fp32", a->precision);
            fmt::print("{}\n", cm.to_string());
            fmt::print("test accuracy: {:.2f}% on {} images\n", 100.0 * cm.result(), x.dim(0));
            return 0;
          }};
}

}  // namespace synapse::cli
