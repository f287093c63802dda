// ONNX interchange: export a traced Synapse graph (or a Keras-style model) to an .onnx file, import an
// .onnx file as a Synapse graph, and read ONNX TensorProto files.
//
//   onnx::export_model(*model, {-1, 28, 28, 1}, "model.onnx");      // traces in inference mode
//   onnx::Model m = onnx::import_model("model.onnx");
//   graph::Session s(*m.graph);
//   Tensor logits = s.run(m.outputs[0], {{m.inputs[0], images}});
//
// Layout. Synapse images are NHWC with HWIO conv kernels (like TensorFlow); ONNX's Conv and pooling
// are NCHW with OIHW kernels. The exporter keeps the model's own NHWC input and output layout and
// wraps each Conv/MaxPool/AveragePool in Transpose nodes (kernels are transposed once, as
// initializers); it then moves transposes past elementwise ops and deletes adjacent inverse pairs, so
// a conv stack carries a single Transpose in and a single Transpose out. The importer does the
// reverse (NCHW Conv -> permute + NHWC conv2d + permute) and cancels inverse permutes again.
//
// Export (opset 13, ai.onnx): Dense layers become Gemm (kernels stored [out, in] with transB=1, the
// layout every runtime reads), conv/pooling Conv/MaxPool/AveragePool with explicit pads for SAME,
// activations, reshapes, reductions, softmax, ... ; inference-mode tracing drops Dropout and turns
// BatchNormalization into per-channel Sub/Mul/Add, which are folded into the Conv/Gemm before them
// when that is exact (ExportOptions::fold_batch_norm). Checked with onnx.checker and OpenCV's dnn.
//
// Import: 99 ONNX op types (supported_ops()), from opset 7 to 17, each translated into Synapse
// ops, with their attributes: broadcasting, axis/keepdims, Gemm's transA/transB/alpha/beta, Conv's
// pads/strides/dilations/auto_pad (group 1), ConvTranspose, pooling pads/ceil_mode/count_include_pad, Slice/Pad/
// Reshape/Split/Squeeze with constant inputs, ... Variants Synapse cannot represent (grouped conv,
// non-constant shapes, float16/double, random training-mode dropout, ...) throw Unsupported.
//
// ONNX protobuf is a private dependency of libsynapse; this header does not include it. Built only with
// SYNAPSE_WITH_ONNX (default ON); otherwise every function throws.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "synapse/error.h"
#include "synapse/tensor.h"

namespace synapse::graph {
class Graph;
}
namespace synapse::nn {
class Module;
}

namespace synapse::onnx {

// Thrown for an ONNX feature Synapse cannot represent (an op, an attribute value, an element type);
// the message names the op type and the node. The conformance runner reports these cases as skipped.
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& what, std::string constant_input = {})
      : Error(what), constant_input_(std::move(constant_input)) {}
  // When the problem is a graph input that Synapse needs as a constant (Reshape's shape, Slice's
  // starts, ...): its name. Importing again with its value in ImportOptions::constant_inputs works.
  const std::string& constant_input() const { return constant_input_; }

 private:
  std::string constant_input_;
};

struct ExportOptions {
  // Names of the graph inputs and outputs in the file (default: the placeholders' node names, and
  // "output", "output_1", ...).
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  std::string graph_name = "synapse";
  // File names of initializers, by the graph node name of their Variable/Const (the Module overload
  // fills it with the parameters' state-dict names, "conv1/kernel").
  std::map<std::string, std::string> initializer_names;
  // Move transposes through elementwise ops and cancel inverse pairs (see the layout note above).
  bool cancel_transposes = true;
  // Fold inference-mode batch normalisation into the layer before it: a conv2d, depthwise_conv2d,
  // dense or 2-D matmul with a constant kernel (and bias), no fused relu, read only by the per-channel
  // (x - mean) * factor (+ beta) that BatchNormalization traces to. The file then holds one Conv/Gemm
  // with kernel * factor and bias (bias - mean) * factor + beta instead of Conv + Sub/Mul/Add; the
  // model itself is not changed. false keeps the per-channel nodes.
  bool fold_batch_norm = true;
};

// What was written.
struct ExportInfo {
  std::vector<std::string> input_names, output_names;
  std::vector<Shape> input_shapes, output_shapes;  // -1: the symbolic batch dimension "N"
  int node_count = 0;                              // ONNX nodes in the file
  int initializer_count = 0;
  int folded_batch_norms = 0;                      // batch normalisations folded into the layer before
  std::vector<std::string> op_types;               // distinct ONNX op types, sorted
};

// Writes the part of `g` that `outputs` depend on: placeholders among `inputs` become graph inputs,
// Variables and Consts become initializers, registry ops become ONNX nodes. Throws Error naming the
// node and its op when an op has no ONNX equivalent, or when an output needs a placeholder that is
// not among `inputs`.
ExportInfo export_model(const graph::Graph& g, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                        const std::string& path, const ExportOptions& opts = {});
// Traces `model` in inference mode (restoring its training flag afterwards) on a float32 placeholder
// "input" of `input_shape` (use -1 for the batch) and exports the output as "logits".
ExportInfo export_model(nn::Module& model, const Shape& input_shape, const std::string& path,
                        ExportOptions opts = {});

struct ImportOptions {
  // Float initializers become trainable Variables (so an imported model can be fine-tuned); otherwise
  // they are constants. Integer initializers are always constants (shapes, axes, indices).
  bool trainable_initializers = true;
  // Graph inputs given values at import time: they become constants instead of placeholders (so
  // ops that need static shapes, axes or pads can use them) and are left out of Model::inputs.
  std::map<std::string, Tensor> constant_inputs;
};

// An imported model: a graph and its input placeholders and output tensors, in the file's order.
struct Model {
  std::shared_ptr<graph::Graph> graph;
  std::vector<Tensor> inputs;   // placeholders (unknown extents, e.g. a dim_param batch, are -1)
  std::vector<Tensor> outputs;  // symbolic, or an ordinary tensor when the output is a constant
  std::vector<std::string> input_names, output_names;
  std::vector<std::string> op_types;  // distinct ONNX op types of the file's nodes, sorted
  // Every named value the nodes compute (ONNX tensor name -> the graph tensor), in node order: the
  // intermediate tensors a feature extractor taps (apps::onnx_features).
  std::vector<std::pair<std::string, Tensor>> values;
  std::int64_t opset = 0;             // the ai.onnx opset the file imports
};

// Reads and translates a model. Throws Unsupported naming the op type and node for anything Synapse
// cannot represent, Error for a malformed or unreadable file.
Model import_model(const std::string& path, const ImportOptions& opts = {});

// What a file holds, without translating it (works for models the importer does not support).
struct ModelInfo {
  std::int64_t ir_version = 0, opset = 0;
  std::string producer;
  std::vector<std::string> input_names, output_names;  // graph inputs exclude initializers
  std::vector<std::string> op_types;                   // distinct, sorted
  int node_count = 0, initializer_count = 0;
};
ModelInfo inspect(const std::string& path);

// The ONNX op types the importer translates (some with attribute variants reported as Unsupported).
std::vector<std::string> supported_ops();

// A serialized TensorProto file (as in ONNX's test data) as a tensor.
Tensor load_tensor(const std::string& path);
// Writes a tensor as a serialized TensorProto.
void save_tensor(const Tensor& t, const std::string& path, const std::string& name = "");

}  // namespace synapse::onnx
