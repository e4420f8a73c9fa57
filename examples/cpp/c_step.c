/* One optimizer step with modc's C API (modc.h only): compiles an optimizer from text with a
 * network parameter set, takes one step from zero state, and checks that the momentum read back
 * equals the gradient (m = beta * m + grad with m = 0) and that every weight changed. Exits 1
 * if anything is wrong. */
#include <modc/modc.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const char* const text =
    "network n(d = 8) = Linear(4, 16) @ ReLU @ Linear(16, d)\n"
    "optimizer muon(lr = 0.02, beta = 0.95) {\n"
    "    m = beta * m + grad\n"
    "    W -= lr * dualize(m)\n"
    "}\n";

/* Deterministic values in [-1, 1). */
static float next_value(uint32_t* s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

static int fail(const char* what, char* error) {
    fprintf(stderr, "c_step: %s%s%s\n", what, error ? ": " : "", error ? error : "");
    modc_free_string(error);
    return 1;
}

int main(void) {
    char* error = NULL;
    const char* set_names[] = {"d"};
    const char* set_values[] = {"12"};
    modc_compile_options options = {0};
    options.set_names = set_names;
    options.set_values = set_values;
    options.set_count = 1;
    modc_optimizer* o = modc_optimizer_compile_source("c_step.mod", text, NULL, &options, &error);
    if (!o) return fail("compile", error);

    size_t count = modc_optimizer_weight_count(o);
    int64_t dims[4];
    if (count != 2 || modc_optimizer_weight_shape(o, 0, dims) != 2 || dims[0] != 16 || dims[1] != 12)
        return fail("weight 0 should be [16, 12] with d = 12", NULL);
    if (modc_optimizer_state_count(o) != 1) return fail("one state variable expected", NULL);
    const char* state = modc_optimizer_state_name(o, 0);

    float* weights[2];
    float* grads[2];
    float* before[2];
    size_t sizes[2];
    uint32_t seed = 12345u;
    for (size_t i = 0; i < count; ++i) {
        size_t rank = modc_optimizer_weight_shape(o, i, dims), n = 1;
        for (size_t k = 0; k < rank; ++k) n *= (size_t)dims[k];
        sizes[i] = n;
        weights[i] = malloc(n * sizeof(float));
        grads[i] = malloc(n * sizeof(float));
        before[i] = malloc(n * sizeof(float));
        if (!weights[i] || !grads[i] || !before[i]) return fail("out of memory", NULL);
        for (size_t k = 0; k < n; ++k) {
            weights[i][k] = before[i][k] = 0.1f * next_value(&seed);
            grads[i][k] = next_value(&seed);
        }
    }

    if (modc_optimizer_set_hyper(o, "lr", 0.01, &error) != 0) return fail("set lr", error);
    if (modc_optimizer_set_hyper(o, "lrr", 0.01, &error) == 0) return fail("an unknown hyperparameter was set", NULL);
    printf("c_step: expected error: %s\n", error);
    modc_free_string(error);
    error = NULL;

    if (modc_optimizer_step_f32(o, weights, (const float* const*)grads, &error) != 0) return fail("step", error);

    int bad = 0;
    for (size_t i = 0; i < count; ++i) {
        float* m = malloc(sizes[i] * sizeof(float));
        if (!m) return fail("out of memory", NULL);
        if (modc_optimizer_read_state(o, state, i, m, &error) != 0) return fail("read state", error);
        size_t changed = 0, differ = 0;
        double sum = 0;
        for (size_t k = 0; k < sizes[i]; ++k) {
            if (m[k] != grads[i][k]) ++differ;
            if (weights[i][k] != before[i][k]) ++changed;
            if (!isfinite(weights[i][k])) ++bad;
            double d = (double)weights[i][k] - before[i][k];
            sum += d * d;
        }
        printf("c_step: weight %zu (%s): %zu of %zu changed, rms(dW) %.3e; %s == grad: %s\n", i,
               modc_optimizer_weight_path(o, i), changed, sizes[i], sqrt(sum / (double)sizes[i]), state,
               differ ? "no" : "yes");
        if (differ || changed == 0) ++bad;
        free(m);
    }
    for (size_t i = 0; i < count; ++i) {
        free(weights[i]);
        free(grads[i]);
        free(before[i]);
    }
    long long steps = modc_optimizer_steps(o);
    modc_optimizer_free(o);
    if (bad || steps != 1) return fail("wrong results", NULL);
    printf("c_step: ok\n");
    return 0;
}
