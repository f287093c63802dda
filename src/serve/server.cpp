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
  const zoo::ModelInput in = zoo::model_input(model.checkpoint);
  Tensor seen;  // [H, W, C] in [0, 1]
  try {
    seen = zoo::image_for_model(in, data::decode_image(body.data(), body.size(), "request body"), "request body");
  } catch (const std::exception& e) {
    const std::string why = e.what();
    // Replace any invalid UTF-8 in the message rather than throw while reporting an error.
    return {why.find("no digit found") != std::string::npos ? 422 : 400,
            nlohmann::json{{"error", why}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  }
  std::vector<float> p;
  {
    std::lock_guard<std::mutex> lock(model_mutex);
    const Tensor x = zoo::model_ready(in, reshape(seen, {1, seen.dim(0), seen.dim(1), seen.dim(2)}));
    p = softmax(train::predict(*model.model, x, 1)).to_vector<float>();
  }
  const auto best = std::max_element(p.begin(), p.end()) - p.begin();
  nlohmann::json reply{{"prediction", best},
                       {"label", in.class_names[static_cast<std::size_t>(best)]},
                       {"confidence", p[static_cast<std::size_t>(best)]},
                       {"probabilities", p}};
  if (in.data == "mnist") {  // the drawing page shows the 28x28 digit the model saw
    std::vector<float> image = seen.to_vector<float>();
    for (float& v : image) v = std::round(v * 1000.0f) / 1000.0f;
    reply["image"] = image;
  }
  return {200, reply.dump()};
}

namespace {

// GET / for a colour model: the drawing page is for digits; this says how to send images instead.
std::string colour_page(const zoo::Trained& model, const zoo::ModelInput& in) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Synapse: {0}</title></head><body>"
      "<h1>{0}</h1><p>This model reads {1}x{2} {3} images of the classes {4}. The drawing page is for digit (MNIST) "
      "models; send an image file (PNG, JPEG, BMP, GIF) as the body of <code>POST /predict</code>, e.g. "
      "<code>curl --data-binary @cat.jpg http://HOST:PORT/predict</code>. It is resized to {1}x{2} and the reply is "
      "JSON: prediction, label, confidence, probabilities.</p></body></html>\n",
      model.name, in.shape[0], in.shape[1], in.shape[2] == 1 ? "grey" : "RGB", fmt::join(in.class_names, ", "));
}

}  // namespace

void run(zoo::Trained model, const Options& options, const std::function<void(int port)>& on_ready) {
  httplib::Server server;
  std::mutex model_mutex;
  server.set_payload_max_length(options.max_bytes);

  const zoo::ModelInput in = zoo::model_input(model.checkpoint);
  const std::string page = in.data == "mnist" ? std::string(kPage) : colour_page(model, in);
  server.Get("/", [&](const httplib::Request&, httplib::Response& res) { res.set_content(page, "text/html; charset=utf-8"); });
  server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(nlohmann::json{{"status", "ok"}, {"model", model.name}, {"input", in.shape}, {"classes", in.class_names}}.dump(),
                    "application/json");
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
