// The C API over Weights and NativeStreamPredictor: every C++ exception is
// caught here and turned into a status code and a message.
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "cadenza/cadenza_model.h"
#include "cadenza/model.hpp"
#include "int8.hpp"
#include "kernels.hpp"

static_assert(CADENZA_MODEL_MAX_PENDING == cadenza::NativeStreamPredictor::kMaxPendingTokens,
              "the C API's pending capacity differs from the predictor's");

struct cadenza_weights {
  std::shared_ptr<const cadenza::Weights> weights;
};

struct cadenza_model {
  cadenza_model(std::shared_ptr<const cadenza::Weights> w, bool int8)
      : predictor(std::move(w), int8) {}
  cadenza::NativeStreamPredictor predictor;
};

namespace {

int report(char* err, std::size_t err_len, int code, const std::string& message) {
  if (err != nullptr && err_len > 0) {
    const std::size_t n = message.size() < err_len - 1 ? message.size() : err_len - 1;
    std::memcpy(err, message.data(), n);
    err[n] = '\0';
  }
  return code;
}

template <typename F>
int guarded(char* err, std::size_t err_len, F&& body) {
  try {
    return body();
  } catch (const cadenza::WeightsError& e) {
    return report(err, err_len, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return report(err, err_len, CADENZA_ERR_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return report(err, err_len, CADENZA_ERR_INTERNAL, e.what());
  } catch (...) {
    return report(err, err_len, CADENZA_ERR_INTERNAL, "unknown native error");
  }
}

int bad_index(char* err, std::size_t err_len, std::int32_t index, int size) {
  return report(err, err_len, CADENZA_ERR_INDEX,
                "token index " + std::to_string(index) + " is outside the vocabulary (0.." +
                    std::to_string(size - 1) + ")");
}

}  // namespace

extern "C" {

int cadenza_model_api_version(void) { return CADENZA_MODEL_API_VERSION; }

int cadenza_weights_load(const char* path, cadenza_weights** out, char* err, size_t err_len) {
  if (path == nullptr || out == nullptr) return report(err, err_len, CADENZA_ERR_ARGUMENT, "null argument");
  *out = nullptr;
  return guarded(err, err_len, [&] {
    auto handle = new cadenza_weights{cadenza::Weights::load(path)};
    *out = handle;
    return CADENZA_OK;
  });
}

int cadenza_weights_parse(const uint8_t* data, size_t size, const char* name,
                          cadenza_weights** out, char* err, size_t err_len) {
  if ((data == nullptr && size > 0) || out == nullptr) {
    return report(err, err_len, CADENZA_ERR_ARGUMENT, "null argument");
  }
  *out = nullptr;
  static const uint8_t kEmpty[1] = {0};
  return guarded(err, err_len, [&] {
    auto handle = new cadenza_weights{
        cadenza::Weights::parse(data ? data : kEmpty, size, name ? name : "<memory>")};
    *out = handle;
    return CADENZA_OK;
  });
}

void cadenza_weights_free(cadenza_weights* weights) { delete weights; }

int cadenza_weights_vocab_size(const cadenza_weights* weights) {
  return weights ? weights->weights->vocab_size() : 0;
}

int cadenza_weights_has_int8(const cadenza_weights* weights) {
  return weights && weights->weights->int8 ? 1 : 0;
}

int cadenza_weights_window(const cadenza_weights* weights) {
  return weights ? weights->weights->window : 0;
}

int cadenza_weights_fill(const cadenza_weights* weights, const int32_t** out) {
  if (weights == nullptr || out == nullptr) return 0;
  *out = weights->weights->fill.data();
  return static_cast<int>(weights->weights->fill.size());
}

int cadenza_weights_primer(const cadenza_weights* weights, const int32_t** out) {
  if (weights == nullptr || out == nullptr) return 0;
  *out = weights->weights->primer.data();
  return static_cast<int>(weights->weights->primer.size());
}

const char* cadenza_weights_token(const cadenza_weights* weights, int index) {
  if (weights == nullptr || index < 0 || index >= weights->weights->vocab_size()) return nullptr;
  return weights->weights->vocabulary[index].c_str();
}

int cadenza_weights_check_vocabulary(const cadenza_weights* weights, const char* const* tokens,
                                     int count, char* err, size_t err_len) {
  if (weights == nullptr || count < 0 || (tokens == nullptr && count > 0)) {
    return report(err, err_len, CADENZA_ERR_ARGUMENT, "null argument");
  }
  return guarded(err, err_len, [&] {
    std::vector<std::string> expected;
    expected.reserve(count);
    for (int i = 0; i < count; ++i) expected.emplace_back(tokens[i] ? tokens[i] : "");
    weights->weights->check_vocabulary(expected);
    return CADENZA_OK;
  });
}

int cadenza_model_new(const cadenza_weights* weights, cadenza_model** out, char* err,
                      size_t err_len) {
  if (weights == nullptr || out == nullptr) return report(err, err_len, CADENZA_ERR_ARGUMENT, "null argument");
  *out = nullptr;
  return guarded(err, err_len, [&] {
    *out = new cadenza_model(weights->weights, false);
    return CADENZA_OK;
  });
}

int cadenza_model_new_int8(const cadenza_weights* weights, cadenza_model** out, char* err,
                           size_t err_len) {
  if (weights == nullptr || out == nullptr) return report(err, err_len, CADENZA_ERR_ARGUMENT, "null argument");
  *out = nullptr;
  return guarded(err, err_len, [&] {
    *out = new cadenza_model(weights->weights, true);
    return CADENZA_OK;
  });
}

void cadenza_model_free(cadenza_model* model) { delete model; }

int cadenza_model_reset(cadenza_model* model, const int32_t* primer, int count, char* err,
                        size_t err_len) {
  if (model == nullptr || count < 0 || (primer == nullptr && count > 0)) {
    return report(err, err_len, CADENZA_ERR_ARGUMENT, "null argument or negative count");
  }
  for (int i = 0; i < count; ++i) {
    if (!model->predictor.valid_index(primer[i])) {
      return bad_index(err, err_len, primer[i], model->predictor.vocab_size());
    }
  }
  model->predictor.reset(primer, count);
  return CADENZA_OK;
}

int cadenza_model_feed(cadenza_model* model, int32_t index, char* err, size_t err_len) {
  if (model == nullptr) return report(err, err_len, CADENZA_ERR_ARGUMENT, "null model");
  if (!model->predictor.valid_index(index)) {
    return bad_index(err, err_len, index, model->predictor.vocab_size());
  }
  model->predictor.feed(index);
  return CADENZA_OK;
}

const double* cadenza_model_distribution(cadenza_model* model) {
  return model ? model->predictor.distribution() : nullptr;
}

int cadenza_model_catch_up(cadenza_model* model) {
  if (model == nullptr) return CADENZA_ERR_ARGUMENT;
  model->predictor.catch_up();
  return CADENZA_OK;
}

int cadenza_model_pending(const cadenza_model* model) {
  return model ? model->predictor.pending() : 0;
}

int cadenza_model_length(const cadenza_model* model) {
  return model ? model->predictor.length() : 0;
}

int cadenza_int8_exact_products(void) {
  return cadenza::int8::products() == cadenza::int8::Products::Exact ? 1 : 0;
}

int cadenza_debug_fp32_avx512(int wanted) { return cadenza::kernels::use_avx512(wanted != 0) ? 1 : 0; }

int cadenza_debug_int8_activation(int which, const float* in, float* out, int count) {
  if (in == nullptr || out == nullptr || count < 0 || (which != 0 && which != 1)) {
    return CADENZA_ERR_ARGUMENT;
  }
  std::memcpy(out, in, sizeof(float) * static_cast<std::size_t>(count));
  if (which == 0) {
    cadenza::int8::sigmoid_inplace(out, count);
  } else {
    cadenza::int8::tanh_inplace(out, count);
  }
  return CADENZA_OK;
}

}  // extern "C"
