/* The C API of modc: compile a .mod file into a dualizer and apply it to gradients.
 *
 *   char* error = NULL;
 *   modc_dualizer* d = modc_compile_file("examples/mlp.mod", NULL, "polar-express", MODC_F32, &error);
 *   if (!d) { fprintf(stderr, "%s", error); modc_free_string(error); }
 *   for (size_t i = 0; i < modc_weight_count(d); ++i) ... modc_weight_path(d, i), modc_weight_shape(d, i, dims)
 *   modc_dualize_f32(d, grads, updates, &error);   // one pointer per weight, in weight order
 *   modc_free(d);
 */
#ifndef MODC_H
#define MODC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct modc_dualizer modc_dualizer;
typedef enum { MODC_F32 = 0, MODC_F64 = 1 } modc_dtype;

/* NULL on failure, with *error (if error is not NULL) set to a message to free with modc_free_string.
 * network may be NULL when the file defines one network; schedule may be NULL for the default. */
modc_dualizer* modc_compile_file(const char* path, const char* network, const char* schedule, modc_dtype dtype,
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

#ifdef __cplusplus
}
#endif

#endif /* MODC_H */
