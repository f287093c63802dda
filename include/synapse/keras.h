// Keras model import: the Keras JSON model config (model.to_json(); the "modelTopology" of a TF.js
// layers-model) into a functional nn::Model, and the TF.js weights (weightsManifest + binary shards,
// float32 or quantised uint8/uint16) into its state.
//
//   keras::Imported m = keras::load_tfjs("model/model.json");   // the shards beside it
//   Tensor probs = (*m.model)(images);                           // NHWC float32, as Keras
//   keras::save("model.syn", m);                                 // a checkpoint with the config inside
//   keras::Imported again = keras::load("model.syn");
//
// The config: Keras 2 style (class_name / config / inbound_nodes as [[["layer", node, tensor, {}]]])
// of "Model"/"Functional" and "Sequential" models. Layers: InputLayer, Conv2D, DepthwiseConv2D,
// SeparableConv2D, BatchNormalization, ReLU, Activation, Dense, Dropout, Flatten, Reshape,
// ZeroPadding2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Add,
// Concatenate, Multiply, Softmax. Layer names and weight names are Keras' ("Conv1/kernel"), so the
// state dict matches the weights manifest. A layer with "trainable": false is frozen
// (Module::set_trainable). An unsupported layer class, option value or weight is an Error naming the
// layer, its class and the option (regularizers, constraints and initializers are ignored: they do
// not change the outputs).
//
// Weights: each manifest group's shards are concatenated and its weights read in order; quantised
// weights are dequantised as TF.js does, value = q * scale + min (in double, then float32).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "synapse/nn.h"

namespace synapse::keras {

struct Imported {
  std::shared_ptr<nn::layers::Model> model;
  std::string config;  // the model's Keras config (JSON: {"class_name": ..., "config": ...})
};

// Builds the model of a Keras model config (JSON text of model.to_json(), or of a model.json whose
// "modelTopology" holds it), with freshly initialised weights. Throws naming the layer and option
// for anything unsupported.
Imported model_from_json(const std::string& json_text);

// Reads the weights of a TF.js model.json (its "weightsManifest"; shard paths relative to the
// file's folder), dequantised to float32, by weight name.
std::map<std::string, Tensor> load_tfjs_weights(const std::string& model_json_path);

// A TF.js layers-model: the model of its modelTopology with the weights of its manifest.
Imported load_tfjs(const std::string& model_json_path);

// A checkpoint of the model's state with the Keras config in its metadata ("keras_config"), and back.
void save(const std::string& path, const Imported& m);
Imported load(const std::string& path);

}  // namespace synapse::keras
