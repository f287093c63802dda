// synapse serve: a small HTTP server around a trained zoo model (cpp-httplib). Uses the library; the
// library does not know it (layer "cli/serve" in tests/layers/check_layers.py).
//   GET  /          the drawing page (src/serve/page.html, embedded in the binary); for a colour model
//                   (cifar-cnn, image folders) a short page saying how to POST images instead
//   GET  /healthz   {"status": "ok", "model": NAME, "input": [H, W, C], "classes": [...]}
//   POST /predict   an image (PNG, JPEG, ...) as the body -> {"prediction", "label", "confidence",
//                   "probabilities", and for MNIST models "image": the 784 values of the 28x28 image the
//                   model saw}; colour models get the image resized to their H x W and channels and
//                   standardised as in training (zoo::image_for_model). 400 for a body that is no image,
//                   413 beyond the size limit, 422 for an image without a digit (MNIST models), 405 for
//                   other methods
#pragma once
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

#include "synapse/zoo.h"

namespace synapse::serve {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0: any free port (the one chosen is passed to on_ready)
  std::size_t max_bytes = 4 * 1024 * 1024; // largest request body
};

// POST /predict without HTTP: the status and JSON body the server replies for a request body (200, 400 for a
// body that is no image, 422 for an image without a digit). Inference holds `model_mutex`. The server's route
// calls it, and so does its fuzz target (fuzz/serve_predict.cpp), with no socket.
struct Reply {
  int status = 200;
  std::string body;  // JSON
};
Reply predict(const zoo::Trained& model, std::mutex& model_mutex, const std::string& body);

// Serves until the process ends; on_ready(port) runs once the socket listens. Inference is serialised
// by a mutex around the model (requests are decoded and preprocessed in parallel on the server's
// worker threads). Throws Error when the address cannot be bound.
void run(zoo::Trained model, const Options& options, const std::function<void(int port)>& on_ready);

}  // namespace synapse::serve
