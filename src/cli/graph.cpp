// synapse graph MODEL [-o out.dot]: a zoo model traced on a placeholder [-1, 28, 28, 1], written as
// Graphviz DOT (one cluster per layer) and rendered to SVG next to it with Graphviz's `dot`.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "core/check.h"

namespace synapse::cli {

namespace {

bool have_dot() { return std::system("command -v dot > /dev/null 2>&1") == 0; }

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Command add_graph(CLI::App& app) {
  struct Args {
    std::string model, out;
    bool train = false;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("graph", "Write a model's graph as Graphviz DOT and SVG");
  sub->add_option("model", a->model, "Zoo model: " + fmt::format("{}", fmt::join(zoo::names(), ", ")))->required();
  sub->add_option("-o,--output", a->out, "DOT file to write (default MODEL.dot); the SVG goes next to it");
  sub->add_flag("--train", a->train, "Trace in training mode (dropout active)");
  return {sub, [a] {
            const zoo::Recipe& r = zoo::recipe(a->model);
            nn::ModulePtr m = r.build();
            m->set_name(r.name);
            const Shape image = r.data == "mnist" ? Shape{28, 28, 1} : Shape{32, 32, 3};  // the colour models: CIFAR's
            m->build_for({1, image[0], image[1], image[2]});
            m->train(a->train);
            graph::Graph g;
            Tensor x = g.placeholder("images", {-1, image[0], image[1], image[2]});
            Tensor h = x;
            // One name scope per layer, so each layer is one cluster.
            if (m->children().empty()) {
              h = (*m)(h);
            } else {
              for (const auto& child : m->children()) {
                auto scope = g.name_scope(child->name());
                h = (*child)(h);
              }
            }
            { auto scope = g.name_scope("output"); (void)softmax(h); }
            const std::string dot_path = a->out.empty() ? r.name + ".dot" : a->out;
            {
              std::ofstream f(dot_path);
              SYN_CHECK(f.good(), "synapse graph: cannot write '{}'", dot_path);
              f << g.to_dot();
              SYN_CHECK(f.good(), "synapse graph: writing '{}' failed", dot_path);
            }
            fmt::print("wrote {} ({} nodes)\n", dot_path, g.size());
            const std::string svg = std::filesystem::path(dot_path).replace_extension(".svg").string();
            SYN_CHECK(have_dot(), "synapse graph: Graphviz's 'dot' is not on PATH, so no SVG was made (the DOT file "
                      "'{}' was written; install graphviz, or render it with: dot -Tsvg {} -o {})", dot_path, dot_path, svg);
            const int rc = std::system(("dot -Tsvg " + quoted(dot_path) + " -o " + quoted(svg)).c_str());
            SYN_CHECK(rc == 0, "synapse graph: 'dot -Tsvg {} -o {}' failed (exit status {})", dot_path, svg, rc);
            fmt::print("wrote {}\n", svg);
            return 0;
          }};
}

}  // namespace synapse::cli
