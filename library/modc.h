/* The C API of modc: compile a .mod file into a dualizer and apply it to gradients, or compile
 * its optimizer block into an in-place training step (modc_optimizer, below).
 *
 *   char* error = NULL;
 *   modc_dualizer* d = modc_compile_file("examples/mlp.mod", NULL, "polar-express", MODC_F32, &error);
 *   if (!d) { fprintf(stderr, "%s", error); modc_free_string(error); }
 *   for (size_t i = 0; i < modc_weight_count(d); ++i) ... modc_weight_path(d, i), modc_weight_shape(d, i, dims)
 *   modc_dualize_f32(d, grads, updates, &error);   // one pointer per weight, in weight order
 *   modc_free(d);
 *
 * With options (a zeroed struct means the defaults: the only network, polar-express, f32, CPU):
 *   modc_compile_options options = {0};
 *   options.threads = 1;             (CPU: one matrix at a time; 0 = one per core)
 *   options.backend = MODC_CUDA;     (an error, saying why, where there is no GPU)
 *   options.dtype = MODC_BF16;       (gradients and updates as bfloat16 bits, computed in f32)
 *   const char* names[] = {"width"}, *values[] = {"64"};
 *   options.set_names = names; options.set_values = values; options.set_count = 1;  (--set width=64)
 *   modc_dualizer* d = modc_compile_file_with("examples/mlp.mod", &options, &error);
 *   modc_dualize_bf16(d, grads, updates, &error);
 * modc_compile_source does the same for .mod text held in memory.
 *
 * An optimizer (the file's `optimizer` block; f32 or f64 weights, updated in place):
 *   modc_optimizer* o = modc_optimizer_compile_file("examples/optimizers.mod", "nesterov", NULL, &error);
 *   modc_optimizer_set_hyper(o, "lr", 0.01, &error);          (any time: no recompilation)
 *   modc_optimizer_step_f32(o, weights, grads, &error);       (one pointer per weight, in weight order)
 *   modc_optimizer_read_state(o, "m", 0, buffer, &error);     (state `m` of weight 0: a checkpoint)
 * With MODC_CUDA, modc_dualize_device and modc_optimizer_step_device take device pointers and a
 * CUstream / cudaStream_t, and enqueue the work on it without host copies.
 *   modc_optimizer_free(o);
 *
 * Every function that takes char** error returns NULL or -1 on failure, with *error (if error is
 * not NULL) set to a message to free with modc_free_string; no C++ exception leaves this API.
 */
#ifndef MODC_H
#define MODC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct modc_dualizer modc_dualizer;
typedef enum { MODC_F32 = 0, MODC_F64 = 1, MODC_BF16 = 2 } modc_dtype;
/* Where the dualizer runs: the CPU, or a GPU through CUDA (docs/cuda.md), or the CUDA program on
 * a simulated GPU, no GPU needed (modc::Backend::CudaSim; "device pointers" are host pointers). */
typedef enum { MODC_CPU = 0, MODC_CUDA = 1, MODC_CUDA_SIM = 2 } modc_backend;
/* The matmuls' precision (docs/cuda.md, Precision); DEFAULT: the backend's (CUDA: bf16). */
typedef enum { MODC_PRECISION_DEFAULT = 0, MODC_PRECISION_F32 = 1, MODC_PRECISION_TF32 = 2, MODC_PRECISION_BF16 = 3 } modc_precision;

typedef struct {
    const char* network;  /* NULL: the only network of the file */
    const char* schedule; /* NULL: polar-express */
    modc_dtype dtype;
    modc_backend backend;
    int no_gram;      /* nonzero: iterate on every matrix directly, no Gram Newton-Schulz */
    unsigned threads; /* CPU: matrices dualized at once; 0: one per hardware thread */
    /* Network parameters (--set NAME=VALUE): set_count names and values, VALUE a decimal number
     * ("64", "2.5", "-3"); a later duplicate name wins. NULL / 0: the file's defaults. */
    const char* const* set_names;
    const char* const* set_values;
    size_t set_count;
    modc_precision precision; /* after the fields above, so that zeroed structs of older callers mean the default */
    /* MODC_CUDA, MODC_CUDA_SIM: the GPU's CUDA device index (0: the first; a rank's own in a
     * multi-GPU run); everything is made on it and device pointers must be on it. An index past
     * the GPUs there are fails naming both. MODC_CPU takes 0 only. Last, for the same reason. */
    int device;
} modc_compile_options;

/* NULL on failure, with *error (if error is not NULL) set to a message to free with modc_free_string.
 * network may be NULL when the file defines one network; schedule may be NULL for the default. */
modc_dualizer* modc_compile_file(const char* path, const char* network, const char* schedule, modc_dtype dtype,
                                 char** error);
/* The same with options (NULL: the defaults). With MODC_CUDA where the CUDA backend cannot run,
 * NULL with *error "the CUDA backend cannot run here: <why>". */
modc_dualizer* modc_compile_file_with(const char* path, const modc_compile_options* options, char** error);
/* The same for .mod text in memory; name stands for the file in messages ("net.mod:3:5: ..."). */
modc_dualizer* modc_compile_source(const char* name, const char* text, const modc_compile_options* options,
                                   char** error);
void modc_free(modc_dualizer* d);
void modc_free_string(char* s);

size_t modc_weight_count(const modc_dualizer* d);
const char* modc_weight_path(const modc_dualizer* d, size_t i);
/* The rank of weight i; writes its dimensions to dims (room for 4) when dims is not NULL. */
size_t modc_weight_shape(const modc_dualizer* d, size_t i, int64_t* dims);

/* 0 on success; -1 with *error set if the dtype does not match or the run fails. */
int modc_dualize_f32(modc_dualizer* d, const float* const* grads, float* const* updates, char** error);
int modc_dualize_f64(modc_dualizer* d, const double* const* grads, double* const* updates, char** error);
int modc_dualize_bf16(modc_dualizer* d, const uint16_t* const* grads, uint16_t* const* updates, char** error);
/* MODC_CUDA only: the same with device pointers on the GPU compiled for (CUdeviceptr values, cudaMalloc'd
 * pointers), of the compiled dtype, and no host copies. stream is a CUstream / cudaStream_t (NULL:
 * the legacy default stream); the run is enqueued on it and this returns before the GPU is done,
 * except that the cubic schedule synchronises the stream at its convergence checks. -1 with
 * *error on the CPU backend. (modc::Dualizer::run_device) */
int modc_dualize_device(modc_dualizer* d, const void* const* grads, void* const* updates, void* stream, char** error);

/* An optimizer: an `optimizer` block of a .mod file compiled into a training step that updates
 * the caller's weights in place (the C++ modc::Optimizer; docs/optimizers.md). */
typedef struct modc_optimizer modc_optimizer;

/* NULL on failure, with *error set. optimizer: the block to compile, NULL when the file defines
 * one. options as for modc_compile_file_with (NULL: the defaults); the dtype must be MODC_F32 or
 * MODC_F64, the weights' and gradients' element type. */
modc_optimizer* modc_optimizer_compile_file(const char* path, const char* optimizer,
                                            const modc_compile_options* options, char** error);
/* The same for .mod text in memory; name stands for the file in messages. */
modc_optimizer* modc_optimizer_compile_source(const char* name, const char* text, const char* optimizer,
                                              const modc_compile_options* options, char** error);
void modc_optimizer_free(modc_optimizer* o);
/* The name of the optimizer block; valid until modc_optimizer_free. */
const char* modc_optimizer_name(const modc_optimizer* o);

/* The network's weights, in weight order: path (NULL when i is out of range), rank (dims as for
 * modc_weight_shape), target t (the update is t * dualize(...)) and scale (t times the map's own
 * factor); target and scale are NaN when i is out of range. */
size_t modc_optimizer_weight_count(const modc_optimizer* o);
const char* modc_optimizer_weight_path(const modc_optimizer* o, size_t i);
size_t modc_optimizer_weight_shape(const modc_optimizer* o, size_t i, int64_t* dims);
double modc_optimizer_weight_target(const modc_optimizer* o, size_t i);
double modc_optimizer_weight_scale(const modc_optimizer* o, size_t i);

/* Hyperparameters: the block's parameters (`lr`, `beta`), in its order, with its defaults.
 * hyper_name: NULL when i is out of range. get: -1 with *error for an unknown name or one with
 * no value yet; set: -1 with *error for an unknown name. A step fails while one has no value. */
size_t modc_optimizer_hyper_count(const modc_optimizer* o);
const char* modc_optimizer_hyper_name(const modc_optimizer* o, size_t i);
int modc_optimizer_get_hyper(const modc_optimizer* o, const char* name, double* value, char** error);
int modc_optimizer_set_hyper(modc_optimizer* o, const char* name, double value, char** error);

/* State: the variables a step reads before it assigns them (`m`), one tensor per weight shaped
 * like it, zero before the first step (on MODC_CUDA it lives on the GPU). read/write copy state
 * `name` of weight `weight` out of or into data (host memory: as many values as the weight has
 * elements, of the compiled dtype: float for MODC_F32, double for MODC_F64; on MODC_CUDA after
 * the steps enqueued so far, waiting for the copy); -1 with *error for an unknown name or weight.
 * zero_state: -1 with *error only if the GPU fails. */
size_t modc_optimizer_state_count(const modc_optimizer* o);
const char* modc_optimizer_state_name(const modc_optimizer* o, size_t i);
/* 1 if weight `weight` has state `name` (in a block with rules, each weight has its rule's), else 0. */
int modc_optimizer_has_state(const modc_optimizer* o, const char* name, size_t weight);
int modc_optimizer_read_state(const modc_optimizer* o, const char* name, size_t weight, void* data, char** error);
int modc_optimizer_write_state(modc_optimizer* o, const char* name, size_t weight, const void* data, char** error);
int modc_optimizer_zero_state(modc_optimizer* o, char** error);
/* Steps taken since compilation (or since modc_optimizer_set_steps). */
long long modc_optimizer_steps(const modc_optimizer* o);
/* Sets the steps taken so far (a checkpoint's): the next step is number steps + 1. */
int modc_optimizer_set_steps(modc_optimizer* o, long long steps, char** error);

/* One step, in place: weights[i] is updated from grads[i] (host pointers, one per weight, in
 * weight order, row-major). 0 on success; -1 with *error set if the dtype is not the one
 * compiled for, a hyperparameter has no value, or the backend fails. */
int modc_optimizer_step_f32(modc_optimizer* o, float* const* weights, const float* const* grads, char** error);
int modc_optimizer_step_f64(modc_optimizer* o, double* const* weights, const double* const* grads, char** error);
/* MODC_CUDA only: one step in place on device pointers (the GPU and dtype compiled for), enqueued on
 * stream (a CUstream / cudaStream_t; NULL: the legacy default stream); returns before the GPU is
 * done (the cubic schedule's convergence checks excepted). The whole step runs on the GPU. -1
 * with *error on the CPU backend. (modc::Optimizer::step_device) */
int modc_optimizer_step_device(modc_optimizer* o, void* const* weights, const void* const* grads, void* stream,
                               char** error);

#ifdef __cplusplus
}
#endif

#endif /* MODC_H */
