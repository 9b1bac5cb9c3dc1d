// Loading native.bin: every field checked before it is trusted, so a short,
// corrupt or foreign file is refused with a message, never read out of bounds.
#include "cadenza/weights.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <new>

#include "cadenza/cadenza_model.h"
#include "int8.hpp"

namespace cadenza {
namespace {

constexpr char kMagic[8] = {'C', 'D', 'Z', 'N', 'A', 'T', 'I', 'V'};
constexpr std::uint32_t kDtypeF32 = 1;
constexpr std::uint32_t kDtypeI8 = 2;
constexpr std::uint32_t kDtypeU8 = 3;
enum Tag : std::uint32_t {
  kTagEmbedding = 1, kTagKernel, kTagRecurrent, kTagBias,
  kTagDenseKernel, kTagDenseBias, kTagOutKernel, kTagOutBias,
  // the int8 section
  kTagQEmbedding, kTagQKernel, kTagQRecurrent, kTagQDenseKernel, kTagQOutKernel
};

// A quantized tensor as stored: its bytes, scale and zero point.
struct Quantized {
  std::vector<std::uint8_t> bytes;
  float scale = 0.0f;
  std::int32_t zero_point = 0;
};

class Cursor {
 public:
  Cursor(const std::uint8_t* data, std::size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  [[noreturn]] void fail(int code, const std::string& problem) const {
    throw WeightsError(code, name_ + ": native weights " + problem);
  }
  const std::uint8_t* take(std::uint64_t count, const char* what) {
    if (count > size_ - at_) {
      fail(CADENZA_ERR_FORMAT, std::string("are short: ") + what + " runs past the end (byte " +
                                   std::to_string(at_) + ")");
    }
    const std::uint8_t* p = data_ + at_;
    at_ += static_cast<std::size_t>(count);
    return p;
  }
  std::uint32_t u32(const char* what) {
    const std::uint8_t* p = take(4, what);
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
  }
  std::uint64_t u64(const char* what) {
    std::uint64_t low = u32(what);
    return low | static_cast<std::uint64_t>(u32(what)) << 32;
  }
  float f32(const char* what) {
    std::uint32_t bits = u32(what);
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }
  void range(const char* what, std::uint32_t value, std::uint32_t low, std::uint32_t high) const {
    if (value < low || value > high) {
      fail(CADENZA_ERR_FORMAT, std::string("have ") + what + " " + std::to_string(value) +
                                   " (expected " + std::to_string(low) + ".." +
                                   std::to_string(high) + ")");
    }
  }
  std::vector<std::int32_t> indices(const char* what, std::uint32_t limit, std::uint32_t vocab) {
    std::uint32_t count = u32(what);
    if (count > limit) {
      fail(CADENZA_ERR_FORMAT, std::string("have a ") + what + " of " + std::to_string(count) +
                                   " tokens (at most " + std::to_string(limit) + ")");
    }
    take(std::uint64_t{4} * count, what);
    at_ -= std::size_t{4} * count;
    std::vector<std::int32_t> out(count);
    for (auto& value : out) {
      value = static_cast<std::int32_t>(u32(what));
      if (value < 0 || static_cast<std::uint32_t>(value) >= vocab) {
        fail(CADENZA_ERR_FORMAT, std::string("have ") + what + " index " +
                                     std::to_string(value) + " outside the vocabulary (0.." +
                                     std::to_string(vocab - 1) + ")");
      }
    }
    return out;
  }
  // A tensor of exactly rows x cols float32, as the header promised.
  std::vector<float> tensor(std::uint32_t tag, const std::string& what, std::uint32_t rows,
                            std::uint32_t cols) {
    std::uint32_t got_tag = u32("tensor tag");
    std::uint32_t dtype = u32("tensor dtype");
    std::uint32_t got_rows = u32("tensor rows");
    std::uint32_t got_cols = u32("tensor cols");
    if (got_tag != tag) {
      fail(CADENZA_ERR_SHAPE, "have tensor tag " + std::to_string(got_tag) + " where the " +
                                  what + " (tag " + std::to_string(tag) + ") belongs");
    }
    if (dtype != kDtypeF32) {
      fail(CADENZA_ERR_SHAPE, "have " + what + " of dtype " + std::to_string(dtype) +
                                  " (this reader knows 1, float32)");
    }
    if (got_rows != rows || got_cols != cols) {
      fail(CADENZA_ERR_SHAPE, "have the wrong shape: " + what + " is " + std::to_string(got_rows) +
                                  "x" + std::to_string(got_cols) + ", expected " +
                                  std::to_string(rows) + "x" + std::to_string(cols));
    }
    const std::uint8_t* p = take(std::uint64_t{4} * rows * cols, what.c_str());
    std::vector<float> out(static_cast<std::size_t>(rows) * cols);
    for (std::size_t i = 0; i < out.size(); ++i, p += 4) {
      std::uint32_t bits = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                           static_cast<std::uint32_t>(p[2]) << 16 |
                           static_cast<std::uint32_t>(p[3]) << 24;
      std::memcpy(&out[i], &bits, 4);
    }
    return out;
  }
  // An int8 (or, for the embedding, uint8) tensor of exactly rows x cols, its
  // scale finite and positive, an int8 one's zero point 0 (the quantizer's
  // symmetric weights; the step relies on it).
  Quantized quantized(std::uint32_t tag, const std::string& what, std::uint32_t dtype,
                      std::uint32_t rows, std::uint32_t cols) {
    std::uint32_t got_tag = u32("int8 tensor tag");
    std::uint32_t got_dtype = u32("int8 tensor dtype");
    std::uint32_t got_rows = u32("int8 tensor rows");
    std::uint32_t got_cols = u32("int8 tensor cols");
    Quantized out;
    out.scale = f32("int8 tensor scale");
    out.zero_point = static_cast<std::int32_t>(u32("int8 tensor zero point"));
    const std::string name = "int8 " + what;
    if (got_tag != tag) {
      fail(CADENZA_ERR_SHAPE, "have tensor tag " + std::to_string(got_tag) + " where the " +
                                  name + " (tag " + std::to_string(tag) + ") belongs");
    }
    if (got_dtype != dtype) {
      fail(CADENZA_ERR_SHAPE, "have " + name + " of dtype " + std::to_string(got_dtype) +
                                  " (expected " + std::to_string(dtype) +
                                  (dtype == kDtypeI8 ? ", int8)" : ", uint8)"));
    }
    if (got_rows != rows || got_cols != cols) {
      fail(CADENZA_ERR_SHAPE, "have the wrong shape: " + name + " is " + std::to_string(got_rows) +
                                  "x" + std::to_string(got_cols) + ", expected " +
                                  std::to_string(rows) + "x" + std::to_string(cols));
    }
    if (!(out.scale > 0.0f && out.scale < 3.0e38f)) {
      fail(CADENZA_ERR_FORMAT, "have " + name + " with scale " + std::to_string(out.scale) +
                                   " (expected a positive finite number)");
    }
    const bool zero_ok = dtype == kDtypeI8 ? out.zero_point == 0
                                           : out.zero_point >= 0 && out.zero_point <= 255;
    if (!zero_ok) {
      fail(CADENZA_ERR_FORMAT, "have " + name + " with zero point " +
                                   std::to_string(out.zero_point) +
                                   (dtype == kDtypeI8 ? " (expected 0)" : " (expected 0..255)"));
    }
    const std::uint64_t count = std::uint64_t{rows} * cols;
    const std::uint8_t* p = take(count, name.c_str());
    take((4 - count % 4) % 4, "int8 tensor padding");
    out.bytes.assign(p, p + count);
    return out;
  }
  std::size_t at() const { return at_; }
  void seek(std::size_t at) { at_ = at; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
  std::string name_;
};

// Strict UTF-8, as Python decodes it: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(const unsigned char* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = s[i];
    std::size_t len;
    unsigned low = 0x80, high = 0xBF;  // the range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;
    } else {
      return false;
    }
    if (n - i < len || s[i + 1] < low || s[i + 1] > high) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

std::array<std::uint32_t, 256> crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

QuantMatrix matrix(Quantized q, std::uint32_t rows, std::uint32_t cols) {
  QuantMatrix m;
  m.rows = static_cast<int>(rows);
  m.cols = static_cast<int>(cols);
  m.scale = q.scale;
  m.data.resize(q.bytes.size());
  std::memcpy(m.data.data(), q.bytes.data(), q.bytes.size());
  int8::prepare(m);
  return m;
}

// The int8 section: the quantized tensors in file order, then the first
// layer's input product per token, computed as the int8 graph computes it
// (the batch's two rows hold the same token, so its quantization range is
// the token's own).
std::shared_ptr<const Int8Weights> read_int8(Cursor& in, const Weights& w,
                                             const std::vector<std::uint32_t>& units,
                                             std::uint32_t dim, std::uint32_t dense) {
  auto q = std::make_shared<Int8Weights>();
  const std::uint32_t vocab = static_cast<std::uint32_t>(w.vocabulary.size());
  std::vector<float> embedding;
  if (w.input == InputKind::Embedding) {
    const Quantized e = in.quantized(kTagQEmbedding, "embedding", kDtypeU8, vocab, dim);
    embedding.resize(e.bytes.size());
    for (std::size_t i = 0; i < e.bytes.size(); ++i) {  // DequantizeLinear
      embedding[i] = static_cast<float>(static_cast<std::int32_t>(e.bytes[i]) - e.zero_point) * e.scale;
    }
  }
  std::uint32_t width = dim;
  for (std::size_t n = 0; n < units.size(); ++n) {
    const std::string layer = "layer " + std::to_string(n + 1);
    const std::uint32_t u = units[n], g = 4 * u;
    q->kernel.push_back(matrix(in.quantized(kTagQKernel, layer + " kernel", kDtypeI8, width, g), width, g));
    q->recurrent.push_back(
        matrix(in.quantized(kTagQRecurrent, layer + " recurrent kernel", kDtypeI8, u, g), u, g));
    width = u;
  }
  q->dense = matrix(in.quantized(kTagQDenseKernel, "dense kernel", kDtypeI8, width, dense), width, dense);
  q->out = matrix(in.quantized(kTagQOutKernel, "output kernel", kDtypeI8, dense, vocab), dense, vocab);

  const QuantMatrix& first = q->kernel[0];
  const std::size_t g = first.cols, stride = padded(first.cols);
  q->input_table.assign(vocab * stride, 0.0f);
  std::vector<float> x(dim);
  std::vector<std::uint8_t> a(int8::padded_rows(static_cast<int>(dim)), 0);
  std::vector<std::int32_t> acc(g);
  for (std::uint32_t v = 0; v < vocab; ++v) {
    if (w.input == InputKind::Embedding) {
      std::copy(&embedding[std::size_t{v} * dim], &embedding[std::size_t{v} * dim] + dim, x.begin());
    } else {
      x[0] = static_cast<float>(static_cast<std::int32_t>(v)) * w.input_multiplier;
    }
    const int8::Quant p = int8::choose(x.data(), nullptr, static_cast<int>(dim));
    int8::quantize(x.data(), static_cast<int>(dim), p, a.data());
    int8::matmul(first, a.data(), p.zero_point, acc.data());
    int8::dequantize(acc.data(), static_cast<int>(g), p.scale * first.scale,
                     &q->input_table[v * stride]);
  }
  q->kernel[0] = QuantMatrix();  // the table replaces it
  return q;
}

std::shared_ptr<Weights> parse_checked(const std::uint8_t* data, std::size_t size,
                                       const std::string& name) {
  Cursor in(data, size, name);
  if (size < kWeightsHeaderBytes + 4) {
    in.fail(CADENZA_ERR_FORMAT, "are short: " + std::to_string(size) + " bytes, less than a header");
  }
  if (std::memcmp(data, kMagic, sizeof kMagic) != 0) {
    in.fail(CADENZA_ERR_FORMAT, "have the wrong magic: not a Cadenza native weights file");
  }
  in.seek(8);
  std::uint32_t version = in.u32("version");
  if (version < kWeightsOldestVersion || version > kWeightsFormatVersion) {
    in.fail(CADENZA_ERR_VERSION, "are format version " + std::to_string(version) +
                                     "; this reader reads versions " +
                                     std::to_string(kWeightsOldestVersion) + " and " +
                                     std::to_string(kWeightsFormatVersion) +
                                     " (rewrite them: cadenza native-weights BUNDLE)");
  }
  std::uint32_t header_bytes = in.u32("header size");
  if (header_bytes != kWeightsHeaderBytes) {
    in.fail(CADENZA_ERR_FORMAT, "have a header of " + std::to_string(header_bytes) +
                                    " bytes (expected " + std::to_string(kWeightsHeaderBytes) + ")");
  }
  std::uint64_t total = in.u64("file size");
  if (total != size) {
    in.fail(CADENZA_ERR_FORMAT, "are " + std::to_string(size) + " bytes but say " +
                                    std::to_string(total) + ": short or padded");
  }
  Cursor tail(data + size - 4, 4, name);
  if (crc32(data, size - 4) != tail.u32("checksum")) {
    in.fail(CADENZA_ERR_CHECKSUM, "fail their CRC-32 check: the file is corrupt");
  }
  std::uint32_t vocab = in.u32("vocabulary size");
  std::uint32_t window = in.u32("window");
  std::uint32_t kind = in.u32("input kind");
  std::uint32_t dim = in.u32("input dim");
  float multiplier = in.f32("input multiplier");
  std::uint32_t gate = in.u32("gate kind");
  float slope = in.f32("gate slope");
  float offset = in.f32("gate offset");
  std::uint32_t layer_count = in.u32("layer count");
  std::uint32_t dense = in.u32("dense units");
  in.range("vocabulary size", vocab, 1, kMaxVocab);
  in.range("window", window, 1, kMaxWindow);
  in.range("input kind", kind, 0, 1);
  in.range("input dim", dim, 1, kMaxInputDim);
  in.range("gate kind", gate, 0, 1);
  in.range("layer count", layer_count, 1, kMaxLayers);
  in.range("dense units", dense, 1, kMaxDense);
  if (kind == 0 && dim != 1) in.fail(CADENZA_ERR_FORMAT, "have a scalar input of dim " + std::to_string(dim) + " (expected 1)");

  auto w = std::make_shared<Weights>();
  w->source = name;
  w->window = static_cast<int>(window);
  w->input = static_cast<InputKind>(kind);
  w->input_multiplier = multiplier;
  w->gate = static_cast<Gate>(gate);
  w->gate_slope = slope;
  w->gate_offset = offset;
  w->dense_units = static_cast<int>(dense);
  in.seek(kWeightsHeaderBytes);
  std::vector<std::uint32_t> units(layer_count);
  for (auto& u : units) u = in.u32("layer units");
  for (std::uint32_t n = 0; n < layer_count; ++n) in.range("layer units", units[n], 1, kMaxUnits);
  w->fill = in.indices("fill", kMaxWindow, vocab);
  if (!w->fill.empty() && w->fill.size() != window) {
    in.fail(CADENZA_ERR_FORMAT, "have a fill of " + std::to_string(w->fill.size()) +
                                    " tokens (expected 0 or the window, " + std::to_string(window) + ")");
  }
  w->primer = in.indices("primer", kMaxWindow * 64, vocab);
  std::uint32_t text_bytes = in.u32("vocabulary size in bytes");
  const char* text = reinterpret_cast<const char*>(in.take(text_bytes, "vocabulary"));
  in.take((4 - text_bytes % 4) % 4, "vocabulary padding");
  w->vocabulary.reserve(vocab);
  std::size_t start = 0;
  for (std::size_t i = 0; i < text_bytes; ++i) {
    if (text[i] == '\0') {
      if (w->vocabulary.size() == vocab) break;
      w->vocabulary.emplace_back(text + start, i - start);
      start = i + 1;
    }
  }
  if (w->vocabulary.size() != vocab || start != text_bytes) {
    in.fail(CADENZA_ERR_FORMAT, "hold a vocabulary of other than the " + std::to_string(vocab) +
                                    " NUL-terminated strings the header says");
  }

  auto pad = [](std::vector<float> v, int n) {
    v.resize(padded(n), 0.0f);
    return v;
  };
  for (const auto& token : w->vocabulary) {
    if (!valid_utf8(reinterpret_cast<const unsigned char*>(token.data()), token.size())) {
      in.fail(CADENZA_ERR_FORMAT, "have a vocabulary string that is not UTF-8");
    }
  }
  std::vector<float> embedding;
  if (w->input == InputKind::Embedding) embedding = in.tensor(kTagEmbedding, "embedding", vocab, dim);
  std::uint32_t width = dim;
  w->layers.resize(layer_count);
  std::vector<float> first_kernel;
  for (std::uint32_t n = 0; n < layer_count; ++n) {
    const std::string layer = "layer " + std::to_string(n + 1);
    const std::uint32_t u = units[n], g = 4 * u;
    std::vector<float> kernel = in.tensor(kTagKernel, layer + " kernel", width, g);
    std::vector<float> recurrent = in.tensor(kTagRecurrent, layer + " recurrent kernel", u, g);
    LayerWeights& out = w->layers[n];
    out.units = static_cast<int>(u);
    out.bias = pad(in.tensor(kTagBias, layer + " bias", 1, g), static_cast<int>(g));
    out.recurrent = Panels::pack(recurrent, static_cast<int>(u), static_cast<int>(g));
    if (n == 0 && w->input == InputKind::Embedding) {
      first_kernel = std::move(kernel);
      out.kernel = Panels::pack({}, 0, static_cast<int>(g));
    } else {
      out.kernel = Panels::pack(kernel, static_cast<int>(width), static_cast<int>(g));
    }
    width = u;
  }
  w->dense_kernel = Panels::pack(in.tensor(kTagDenseKernel, "dense kernel", width, dense),
                                 static_cast<int>(width), static_cast<int>(dense));
  w->dense_bias = pad(in.tensor(kTagDenseBias, "dense bias", 1, dense), static_cast<int>(dense));
  w->out_kernel = Panels::pack(in.tensor(kTagOutKernel, "output kernel", dense, vocab),
                               static_cast<int>(dense), static_cast<int>(vocab));
  w->out_bias = pad(in.tensor(kTagOutBias, "output bias", 1, vocab), static_cast<int>(vocab));
  std::uint32_t has_int8 = 0;
  if (version >= 2) {
    has_int8 = in.u32("int8 section flag");
    in.range("int8 section flag", has_int8, 0, 1);
  }
  if (has_int8 == 1) {
    w->int8 = read_int8(in, *w, units, dim, dense);
  }
  if (in.at() != size - 4) {
    in.fail(CADENZA_ERR_FORMAT, "have " + std::to_string(size - 4 - in.at()) +
                                    " unexpected bytes after the tensors");
  }
  if (w->input == InputKind::Embedding) {
    // The first layer's input product depends on the token alone: one table row per token.
    const std::size_t g = 4 * static_cast<std::size_t>(units[0]);
    const std::size_t stride = padded(static_cast<int>(g));
    w->input_table.assign(static_cast<std::size_t>(vocab) * stride, 0.0f);
    for (std::size_t v = 0; v < vocab; ++v) {
      float* row = &w->input_table[v * stride];
      for (std::size_t j = 0; j < g; ++j) row[j] = w->layers[0].bias[j];
      for (std::size_t k = 0; k < dim; ++k) {
        const float x = embedding[v * dim + k];
        const float* kr = &first_kernel[k * g];
        for (std::size_t j = 0; j < g; ++j) row[j] += x * kr[j];
      }
    }
  }
  return w;
}

}  // namespace

std::uint32_t crc32(const std::uint8_t* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = crc_table();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

Panels Panels::pack(const std::vector<float>& row_major, int rows, int cols) {
  Panels m;
  m.rows = rows;
  m.cols = cols;
  m.panels = padded(cols) / kPanel;
  m.data.assign(static_cast<std::size_t>(m.panels) * rows * kPanel, 0.0f);
  for (int k = 0; k < rows; ++k) {
    for (int n = 0; n < cols; ++n) {
      const std::size_t at = (static_cast<std::size_t>(n / kPanel) * rows + k) * kPanel + n % kPanel;
      m.data[at] = row_major[static_cast<std::size_t>(k) * cols + n];
    }
  }
  return m;
}

int Weights::max_units() const {
  int most = 0;
  for (const auto& layer : layers) most = layer.units > most ? layer.units : most;
  return most;
}

std::shared_ptr<const Weights> Weights::parse(const std::uint8_t* data, std::size_t size,
                                              const std::string& name) {
  try {
    return parse_checked(data, size, name);
  } catch (const std::bad_alloc&) {
    throw WeightsError(CADENZA_ERR_MEMORY, name + ": out of memory loading the native weights");
  }
}

std::shared_ptr<const Weights> Weights::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) {
    throw WeightsError(CADENZA_ERR_IO, path + ": native weights missing or unreadable; add them "
                                              "with: cadenza native-weights BUNDLE");
  }
  const std::streamoff size = file.tellg();
  if (size < 0 || static_cast<std::uint64_t>(size) > kMaxFileBytes) {
    throw WeightsError(CADENZA_ERR_FORMAT, path + ": native weights of an impossible size");
  }
  std::vector<std::uint8_t> data(static_cast<std::size_t>(size));
  file.seekg(0);
  if (size > 0 && !file.read(reinterpret_cast<char*>(data.data()), size)) {
    throw WeightsError(CADENZA_ERR_IO, path + ": cannot read the native weights");
  }
  return parse(data.data(), data.size(), path);
}

void Weights::check_vocabulary(const std::vector<std::string>& tokens) const {
  const std::string& name = source;
  if (tokens.size() != vocabulary.size()) {
    throw WeightsError(CADENZA_ERR_VOCABULARY,
                       name + ": native weights of another vocabulary: " +
                           std::to_string(vocabulary.size()) + " tokens, the manifest " +
                           std::to_string(tokens.size()));
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] != vocabulary[i]) {
      throw WeightsError(CADENZA_ERR_VOCABULARY,
                         name + ": native weights of another vocabulary: token " +
                             std::to_string(i) + " is '" + vocabulary[i] +
                             "', the manifest's is '" + tokens[i] + "'");
    }
  }
}

}  // namespace cadenza
