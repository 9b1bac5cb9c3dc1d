// The native weights file, loaded: everything the model step and an engine
// need, checked once at load.  Layout of the file: docs/native.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cadenza {

// Version 2 adds the optional int8 section (docs/native.md); version 1 files
// (no such section) still load.
constexpr std::uint32_t kWeightsFormatVersion = 2;
constexpr std::uint32_t kWeightsOldestVersion = 1;
constexpr std::size_t kWeightsHeaderBytes = 64;
// Limits shared with cadenza/native_format.py: a corrupt header cannot ask for more.
constexpr std::uint32_t kMaxVocab = 65536;
constexpr std::uint32_t kMaxWindow = 65536;
constexpr std::uint32_t kMaxLayers = 8;
constexpr std::uint32_t kMaxUnits = 4096;
constexpr std::uint32_t kMaxInputDim = 4096;
constexpr std::uint32_t kMaxDense = 8192;
constexpr std::uint64_t kMaxFileBytes = std::uint64_t{1} << 31;

enum class InputKind : std::uint32_t { Scalar = 0, Embedding = 1 };
enum class Gate : std::uint32_t { Sigmoid = 0, HardSigmoid = 1 };

// A load failure: code is a CADENZA_ERR_* value, what() names the file.
class WeightsError : public std::runtime_error {
 public:
  WeightsError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// Columns per panel: a matrix is stored as panels of kPanel columns, each
// panel's rows one after another, so the step reads it in sequential sweeps.
constexpr int kPanel = 32;
inline int padded(int n) { return (n + kPanel - 1) / kPanel * kPanel; }

// A rows x cols matrix in panels; columns past cols are zero.
struct Panels {
  int rows = 0;
  int cols = 0;
  int panels = 0;
  std::vector<float> data;  // [panel][row][kPanel]
  static Panels pack(const std::vector<float>& row_major, int rows, int cols);
};

// One LSTM layer, laid out for the step: gates i, f, g, o in blocks of `units`.
struct LayerWeights {
  int units = 0;
  Panels kernel;     // [inputs][4 * units]; no rows when the embedding table replaces it
  Panels recurrent;  // [units][4 * units]
  std::vector<float> bias;  // [padded(4 * units)]
};

// An int8 matrix of the bundle's int8 graph (onnxruntime's dynamic
// quantizer: one scale per tensor, zero point 0), rows x cols row-major, as
// MatMulInteger multiplies it; colsum[n] is the sum of column n, for the
// input's zero point.
struct QuantMatrix {
  int rows = 0;
  int cols = 0;
  float scale = 0.0f;
  std::vector<std::int8_t> data;     // [rows][cols]
  std::vector<std::int32_t> colsum;  // [cols]
  // The same weights for the AVX2 kernel: panels of kPanel columns, each
  // panel's rows in groups of four, a column's four bytes together
  // ([panel][row / 4][column in panel][row % 4]), rows padded to a multiple
  // of four with zeros.  One vpmaddubsw then makes exactly MLAS's pairs.
  std::vector<std::int8_t> packed;
  int groups = 0;  // rows / 4, rounded up
  int panels = 0;  // padded(cols) / kPanel
};

// What the int8 step needs beyond the fp32 biases: the first layer's input
// product per token (the dequantized embedding or the scalar input,
// quantized as DynamicQuantizeLinear does and multiplied by the int8 kernel,
// without the bias), and the other matrices.
struct Int8Weights {
  std::vector<float> input_table;  // [vocab][padded(4 * units of layer 1)]
  std::vector<QuantMatrix> kernel;     // per layer; layer 1's is empty (the table replaces it)
  std::vector<QuantMatrix> recurrent;  // per layer
  QuantMatrix dense;
  QuantMatrix out;
};

// Read-only after load; shared by every voice that runs it.
struct Weights {
  std::string source;  // the file (or name) it was read from, for messages
  std::vector<std::string> vocabulary;
  int window = 0;
  InputKind input = InputKind::Embedding;
  float input_multiplier = 1.0f;  // scalar input: float(index) * multiplier
  Gate gate = Gate::Sigmoid;
  float gate_slope = 0.0f;  // hard sigmoid: clip(slope * x + offset, 0, 1)
  float gate_offset = 0.0f;
  std::vector<std::int32_t> fill;    // empty, or `window` tokens (the seed preset's left-fill)
  std::vector<std::int32_t> primer;  // the bundle's first primer
  // Embedding input: row v is embedding[v] times the first input kernel plus its bias.
  std::vector<float> input_table;  // [vocab][padded(4 * units of layer 1)]
  std::vector<LayerWeights> layers;
  int dense_units = 0;
  Panels dense_kernel;  // [units of the last layer][dense]
  std::vector<float> dense_bias;  // [padded(dense)]
  Panels out_kernel;  // [dense][vocab]
  std::vector<float> out_bias;  // [padded(vocab)]
  std::shared_ptr<const Int8Weights> int8;    // null when the file has no int8 section

  int vocab_size() const { return static_cast<int>(vocabulary.size()); }
  int max_units() const;

  // Throws WeightsError naming `path`.
  static std::shared_ptr<const Weights> load(const std::string& path);
  static std::shared_ptr<const Weights> parse(const std::uint8_t* data, std::size_t size,
                                              const std::string& name);
  // Throws WeightsError (CADENZA_ERR_VOCABULARY) unless `tokens` is the vocabulary.
  void check_vocabulary(const std::vector<std::string>& tokens) const;
};

std::uint32_t crc32(const std::uint8_t* data, std::size_t size);

}  // namespace cadenza
