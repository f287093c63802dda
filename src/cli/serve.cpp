// synapse serve RUN: a page where people draw digits and the model reads them, and a JSON endpoint.
#include <memory>

#include "cli/commands.h"
#include "serve/server.h"

namespace synapse::cli {

Command add_serve(CLI::App& app) {
  struct Args {
    std::string checkpoint;
    serve::Options options;
    std::int64_t max_kb = 4096;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("serve", "Serve a page where people draw digits for the model to read, and POST /predict (colour models: images of any size)");
  sub->add_option("checkpoint", a->checkpoint, "A model file or a run folder (its model.syn)")->required();
  sub->add_option("--port", a->options.port, "TCP port (0: any free port)")->capture_default_str()->check(integer_in(0, 65535));
  sub->add_option("--host", a->options.host, "Address to listen on (0.0.0.0: every interface)")->capture_default_str();
  sub->add_option("--max-kb", a->max_kb, "Largest request body in KiB (larger ones get 413)")->capture_default_str()
      ->check(integer_in(1, 1 << 20));
  return {sub, [a] {
            zoo::Trained t = zoo::load_trained(a->checkpoint);
            a->options.max_bytes = static_cast<std::size_t>(a->max_kb) * 1024;
            const std::string name = t.name, path = t.path;
            serve::run(std::move(t), a->options, [&](int port) {
              fmt::print("serving {} ({}) on http://{}:{}/ (Ctrl-C stops)\n", path, name, a->options.host, port);
              std::fflush(stdout);
            });
            return 0;
          }};
}

}  // namespace synapse::cli
