/* The C API of modc: compile a .mod file into a dualizer and apply it to gradients.
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
 *   modc_dualizer* d = modc_compile_file_with("examples/mlp.mod", &options, &error);
 *   modc_dualize_bf16(d, grads, updates, &error);
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
/* Where the dualizer runs: the CPU, or GPU 0 through CUDA (docs/cuda.md). */
typedef enum { MODC_CPU = 0, MODC_CUDA = 1 } modc_backend;

typedef struct {
    const char* network;  /* NULL: the only network of the file */
    const char* schedule; /* NULL: polar-express */
    modc_dtype dtype;
    modc_backend backend;
    int no_gram;      /* nonzero: iterate on every matrix directly, no Gram Newton-Schulz */
    unsigned threads; /* CPU: matrices dualized at once; 0: one per hardware thread */
} modc_compile_options;

/* NULL on failure, with *error (if error is not NULL) set to a message to free with modc_free_string.
 * network may be NULL when the file defines one network; schedule may be NULL for the default. */
modc_dualizer* modc_compile_file(const char* path, const char* network, const char* schedule, modc_dtype dtype,
                                 char** error);
/* The same with options (NULL: the defaults). With MODC_CUDA where the CUDA backend cannot run,
 * NULL with *error "the CUDA backend cannot run here: <why>". */
modc_dualizer* modc_compile_file_with(const char* path, const modc_compile_options* options, char** error);
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

#ifdef __cplusplus
}
#endif

#endif /* MODC_H */
