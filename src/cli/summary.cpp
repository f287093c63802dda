// synapse summary MODEL: the Keras-style summary of a zoo model.
#include "cli/commands.h"

namespace synapse::cli {

Command add_summary(CLI::App& app) {
  auto* sub = app.add_subcommand("summary", "Print the layers, output shapes and parameter counts of a zoo model");
  auto model = std::make_shared<std::string>();
  sub->add_option("model", *model, "Zoo model: " + fmt::format("{}", fmt::join(zoo::names(), ", ")))->required();
  return {sub, [model] {
            const zoo::Recipe& r = zoo::recipe(*model);
            nn::ModulePtr m = r.build();
            m->set_name(r.name);
            // MNIST models take [28, 28, 1] digits, the colour ones (cifar-cnn, small-cnn, resnet-small) CIFAR's
            // [32, 32, 3] images.
            m->build_for(r.data == "mnist" ? Shape{1, 28, 28, 1} : Shape{1, 32, 32, 3});
            fmt::print("{}\n\n", r.description);
            m->summary();
            return 0;
          }};
}

}  // namespace synapse::cli
