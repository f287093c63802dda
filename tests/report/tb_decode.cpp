// tb_decode RUN_DIR: decodes every event file under RUN_DIR/train and RUN_DIR/validation with the real
// protobuf library (checking every record's framing and CRCs) and prints, per run, the number of events
// and each tag with its number of values and its last value, e.g.
//   train: 1 file, 14 events, graph 2 nodes
//   train epoch_loss: 1 values, last 0.3391 at step 0
// Exits 1 naming the file and the record on any error.
#include <cstdio>
#include <map>

#include "tb_reader.h"
#include "tensorboard.pb.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: tb_decode RUN_DIR [--nodes]\n");
    return 2;
  }
  const bool print_nodes = argc == 3 && std::string(argv[2]) == "--nodes";
  try {
    for (const std::string run : {"train", "validation"}) {
      const auto files = tbtest::event_files(std::string(argv[1]) + "/" + run);
      if (files.empty()) throw std::runtime_error("no event file in " + std::string(argv[1]) + "/" + run);
      std::size_t events = 0;
      int graph_nodes = 0;
      std::map<std::string, std::pair<int, std::pair<long long, double>>> tags;
      for (const auto& f : files) {
        const auto recs = tbtest::read_records(f);
        for (std::size_t i = 0; i < recs.data.size(); ++i) {
          tensorflow::Event e;
          if (!e.ParseFromString(recs.data[i]))
            throw std::runtime_error(f + " record " + std::to_string(i) + ": not a tensorflow.Event");
          if (i == 0 && e.file_version() != "brain.Event:2")
            throw std::runtime_error(f + ": first record is not file_version brain.Event:2");
          ++events;
          if (!e.graph_def().empty()) {
            tensorflow::GraphDef g;
            if (!g.ParseFromString(e.graph_def())) throw std::runtime_error(f + ": graph_def is not a GraphDef");
            graph_nodes = g.node_size();
            if (print_nodes)
              for (const auto& n : g.node()) {
                std::string inputs;
                for (const auto& in : n.input()) inputs += " " + in;
                std::printf("node %s (%s) <-%s\n", n.name().c_str(), n.op().c_str(), inputs.c_str());
              }
          }
          for (const auto& v : e.summary().value()) {
            auto& t = tags[v.tag()];
            ++t.first;
            t.second = {static_cast<long long>(e.step()), v.has_histo() ? v.histo().num() : v.simple_value()};
          }
        }
      }
      std::printf("%s: %zu file(s), %zu events, graph %d nodes\n", run.c_str(), files.size(), events, graph_nodes);
      for (const auto& [tag, t] : tags)
        std::printf("%s %s: %d values, last %.4f at step %lld\n", run.c_str(), tag.c_str(), t.first, t.second.second,
                    t.second.first);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tb_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
