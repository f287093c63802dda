// `synapse serve`'s POST /predict handler called directly (no socket): any request body gets a JSON reply with
// status 200, 400 or 422. The model is the zoo's softmax recipe, untrained (seeded), so no file is needed.
#include <mutex>

#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "serve/server.h"
#include "synapse/random.h"
#include "synapse/zoo.h"

SYNAPSE_FUZZ_TARGET(serve) {
  static synapse::zoo::Trained model = [] {
    synapse::zoo::Trained m;
    m.name = "softmax";
    m.model = synapse::zoo::recipe("softmax").build();
    return m;
  }();
  static std::mutex mutex;
  const std::string body(reinterpret_cast<const char*>(data), size);
  const synapse::serve::Reply r = synapse::serve::predict(model, mutex, body);
  if (r.status != 200 && r.status != 400 && r.status != 422)
    synapse::fuzz::finding("status " + std::to_string(r.status) + ": " + r.body);
  const auto j = nlohmann::json::parse(r.body);  // the reply is always JSON
  if (r.status != 200 && !j.contains("error")) synapse::fuzz::finding("an error reply without \"error\": " + r.body);
}
