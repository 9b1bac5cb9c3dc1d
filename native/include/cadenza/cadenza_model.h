/* The native model step's C API, for ctypes and any C caller.
 *
 * Every function that can fail returns a CADENZA_* code and, where the
 * caller passes a buffer, writes a one-line message naming the file and
 * the problem into it (always NUL-terminated, truncated to fit).  Nothing
 * here throws, and nothing aborts on bad input.  See docs/native.md.
 */
#ifndef CADENZA_MODEL_H
#define CADENZA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define CADENZA_API __declspec(dllexport)
#else
#define CADENZA_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* 3: reset and feed are lazy (their steps run at the next distribution or
 * cadenza_model_catch_up); cadenza_model_catch_up and cadenza_model_pending;
 * cadenza_int8_exact_products. */
#define CADENZA_MODEL_API_VERSION 3
/* Fed tokens a model keeps unstepped at most (NativeStreamPredictor::kMaxPendingTokens). */
#define CADENZA_MODEL_MAX_PENDING 16

enum cadenza_status {
  CADENZA_OK = 0,
  CADENZA_ERR_IO = 1,          /* the file is missing or unreadable */
  CADENZA_ERR_FORMAT = 2,      /* short, wrong magic, bad header or layout */
  CADENZA_ERR_VERSION = 3,     /* another format version */
  CADENZA_ERR_SHAPE = 4,       /* a tensor of the wrong shape, tag or dtype */
  CADENZA_ERR_CHECKSUM = 5,    /* the CRC-32 does not match: corrupt */
  CADENZA_ERR_VOCABULARY = 6,  /* made for another vocabulary */
  CADENZA_ERR_INDEX = 7,       /* a token index outside the vocabulary */
  CADENZA_ERR_ARGUMENT = 8,    /* a null handle or pointer, a negative count */
  CADENZA_ERR_MEMORY = 9,      /* out of memory while loading */
  CADENZA_ERR_INTERNAL = 10
};

typedef struct cadenza_weights cadenza_weights;
typedef struct cadenza_model cadenza_model;

CADENZA_API int cadenza_model_api_version(void);

/* Load and check a weights file (native.bin).  On success *out owns it. */
CADENZA_API int cadenza_weights_load(const char* path, cadenza_weights** out, char* err,
                                     size_t err_len);
/* The same from bytes in memory; name is used in messages only. */
CADENZA_API int cadenza_weights_parse(const uint8_t* data, size_t size, const char* name,
                                      cadenza_weights** out, char* err, size_t err_len);
/* Release a handle (models made from it keep the weights alive). NULL is fine. */
CADENZA_API void cadenza_weights_free(cadenza_weights* weights);

CADENZA_API int cadenza_weights_vocab_size(const cadenza_weights* weights);
CADENZA_API int cadenza_weights_window(const cadenza_weights* weights);
/* 1 when the file has an int8 section (format version 2), else 0. */
CADENZA_API int cadenza_weights_has_int8(const cadenza_weights* weights);
/* The left-fill and the first primer: *out points into the weights; the count is returned. */
CADENZA_API int cadenza_weights_fill(const cadenza_weights* weights, const int32_t** out);
CADENZA_API int cadenza_weights_primer(const cadenza_weights* weights, const int32_t** out);
/* Token string of an index (UTF-8, NUL-terminated), or NULL when out of range. */
CADENZA_API const char* cadenza_weights_token(const cadenza_weights* weights, int index);
/* CADENZA_ERR_VOCABULARY unless the file's vocabulary is exactly tokens[0..count). */
CADENZA_API int cadenza_weights_check_vocabulary(const cadenza_weights* weights,
                                                 const char* const* tokens, int count, char* err,
                                                 size_t err_len);

/* One voice: its own state; every buffer is allocated here, none after. */
CADENZA_API int cadenza_model_new(const cadenza_weights* weights, cadenza_model** out, char* err,
                                  size_t err_len);
/* The same running the file's int8 section, as the bundle's int8 stream graph
 * runs on onnxruntime; CADENZA_ERR_FORMAT when the file has none. */
CADENZA_API int cadenza_model_new_int8(const cadenza_weights* weights, cadenza_model** out,
                                       char* err, size_t err_len);
CADENZA_API void cadenza_model_free(cadenza_model* model);
/* Forget, then feed primer[0..count) (the left-fill completes a short one).
 * Reset and feed only record what is owed; the steps run, in order, at the
 * next distribution or catch-up, with the same results to the bit. */
CADENZA_API int cadenza_model_reset(cadenza_model* model, const int32_t* primer, int count,
                                    char* err, size_t err_len);
CADENZA_API int cadenza_model_feed(cadenza_model* model, int32_t index, char* err,
                                   size_t err_len);
/* vocab_size float64 probabilities, valid until the next call on this model; NULL on a NULL model. */
CADENZA_API const double* cadenza_model_distribution(cadenza_model* model);
/* Run every step owed now, without the head (what a distribution would do first). */
CADENZA_API int cadenza_model_catch_up(cadenza_model* model);
/* Steps owed (a pending reset's tokens plus the fed tokens not yet stepped): for tests. */
CADENZA_API int cadenza_model_pending(const cadenza_model* model);
/* For the tests: the int8 step's sigmoid (which 0) or tanh (which 1), as
 * onnxruntime's MLAS computes them, of in[0..count) into out. */
/* Test hook: whether the fp32 step's matrix kernels may use their AVX-512
 * build (wanted != 0, the default) or not; returns 1 where the CPU has it.
 * Every build gives the same bits; call it while no step runs. */
CADENZA_API int cadenza_debug_fp32_avx512(int wanted);
CADENZA_API int cadenza_debug_int8_activation(int which, const float* in, float* out, int count);
/* How the int8 step adds MatMulInteger's products here: 1 exact (onnxruntime's
 * VNNI, AMX, SSE and NEON kernels), 0 in int16 pairs that saturate (its AVX2
 * and AVX512-core kernels): the rule onnxruntime follows on this CPU. */
CADENZA_API int cadenza_int8_exact_products(void);
/* Tokens in the active row's context (0 .. 2*window-1): for tests. */
CADENZA_API int cadenza_model_length(const cadenza_model* model);

#ifdef __cplusplus
}
#endif

#endif /* CADENZA_MODEL_H */
