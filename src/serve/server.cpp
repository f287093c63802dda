// synapse serve (src/serve/server.h): cpp-httplib routes around data::mnist_style and the model.
#include "serve/server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/check.h"
#include "serve/page.h"
#include "synapse/data.h"
#include "synapse/train.h"

namespace synapse::serve {
namespace {

void reply_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
}

}  // namespace

Reply predict(const zoo::Trained& model, std::mutex& model_mutex, const std::string& body) {
  Tensor seen;
  try {
    seen = data::mnist_style(data::decode_image(body.data(), body.size(), "request body"));
  } catch (const std::exception& e) {
    const std::string why = e.what();
    // Replace any invalid UTF-8 in the message rather than throw while reporting an error.
    return {why.find("no digit found") != std::string::npos ? 422 : 400,
            nlohmann::json{{"error", why}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  }
  std::vector<float> p;
  {
    std::lock_guard<std::mutex> lock(model_mutex);
    p = softmax(train::predict(*model.model, reshape(seen, {1, 28, 28, 1}), 1)).to_vector<float>();
  }
  const auto best = std::max_element(p.begin(), p.end()) - p.begin();
  std::vector<float> image = seen.to_vector<float>();
  for (float& v : image) v = std::round(v * 1000.0f) / 1000.0f;
  return {200, nlohmann::json{{"prediction", best},
                              {"confidence", p[static_cast<std::size_t>(best)]},
                              {"probabilities", p},
                              {"image", image}}
                   .dump()};
}

void run(zoo::Trained model, const Options& options, const std::function<void(int port)>& on_ready) {
  httplib::Server server;
  std::mutex model_mutex;
  server.set_payload_max_length(options.max_bytes);

  server.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kPage, "text/html; charset=utf-8"); });
  server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(nlohmann::json{{"status", "ok"}, {"model", model.name}}.dump(), "application/json");
  });
  server.Post("/predict", [&](const httplib::Request& req, httplib::Response& res) {
    const Reply r = predict(model, model_mutex, req.body);
    res.status = r.status;
    res.set_content(r.body, "application/json");
  });
  const auto post_only = [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", "POST");
    reply_error(res, 405, fmt::format("{} /predict: method not allowed; send the image with POST", req.method));
  };
  server.Get("/predict", post_only);
  server.Put("/predict", post_only);
  server.Delete("/predict", post_only);
  server.Patch("/predict", post_only);
  server.set_error_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      reply_error(res, 413, fmt::format("the request body is larger than the limit of {} bytes", options.max_bytes));
    else if (res.status == 404)
      reply_error(res, 404, fmt::format("no such page: {} {} (try GET /, GET /healthz, POST /predict)", req.method, req.path));
    else
      reply_error(res, res.status, fmt::format("bad request ({})", res.status));
  });

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    SYN_CHECK(port > 0, "serve: cannot listen on {} (any port)", options.host);
  } else {
    SYN_CHECK(server.bind_to_port(options.host, port), "serve: cannot listen on {}:{} (in use, or not an address of this machine?)",
              options.host, port);
  }
  on_ready(port);
  server.listen_after_bind();
}

}  // namespace synapse::serve
