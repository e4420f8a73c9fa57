// The C API (modc.h) over the C++ one. Every entry point that can fail catches everything: no
// C++ exception crosses into C.
#include "library/modc.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "library/modc.hpp"

struct modc_dualizer {
    modc::Dualizer dualizer;
};

struct modc_optimizer {
    modc::Optimizer optimizer;
};

namespace {

// Copies message into a malloc'd string for *error; allocates nothing else, so that it can run
// inside a catch block without throwing.
void set_error(char** error, const char* message) noexcept {
    if (!error) return;
    std::size_t n = std::strlen(message);
    *error = static_cast<char*>(std::malloc(n + 1));
    if (*error) std::memcpy(*error, message, n + 1);
}

// Runs f, returning its value; on an exception sets *error and returns `failed`.
template <class R, class F>
R guard(char** error, R failed, F&& f) noexcept {
    try {
        return f();
    } catch (const std::exception& e) {
        set_error(error, e.what());
    } catch (...) {
        set_error(error, "modc: unknown error");
    }
    return failed;
}

template <class F>
int guard_status(char** error, F&& f) noexcept {
    return guard(error, -1, [&] {
        f();
        return 0;
    });
}

template <class T>
void require(const T* p, const char* what) {
    if (!p) throw std::invalid_argument(std::string(what) + " is NULL");
}

// A C caller may store any int in an enum field; reading one that is none of the enumerators as
// the C++ enum is undefined behaviour, so the field is read as the int it holds.
template <class E>
int enum_value(const E& field) {
    static_assert(sizeof(E) == sizeof(int), "C enums are ints");
    int value = 0;
    std::memcpy(&value, &field, sizeof value);
    return value;
}

modc::CompileOptions compile_options(const modc_compile_options* options) {
    modc::CompileOptions o;
    if (!options) return o;
    if (options->network) o.network = options->network;
    if (options->schedule) o.schedule = options->schedule;
    switch (const int dtype = enum_value(options->dtype)) {
        case MODC_F32: o.dtype = modc::DType::F32; break;
        case MODC_F64: o.dtype = modc::DType::F64; break;
        case MODC_BF16: o.dtype = modc::DType::BF16; break;
        default: throw modc::CompileError("unknown dtype " + std::to_string(dtype));
    }
    switch (const int backend = enum_value(options->backend)) {
        case MODC_CPU: o.backend = modc::Backend::Cpu; break;
        case MODC_CUDA: o.backend = modc::Backend::Cuda; break;
        case MODC_CUDA_SIM: o.backend = modc::Backend::CudaSim; break;
        default: throw modc::CompileError("unknown backend " + std::to_string(backend));
    }
    o.gram = options->no_gram == 0;
    o.threads = options->threads;
    o.device = options->device;
    switch (const int precision = enum_value(options->precision)) {
        case MODC_PRECISION_DEFAULT: o.precision = modc::Precision::Default; break;
        case MODC_PRECISION_F32: o.precision = modc::Precision::F32; break;
        case MODC_PRECISION_TF32: o.precision = modc::Precision::TF32; break;
        case MODC_PRECISION_BF16: o.precision = modc::Precision::BF16; break;
        default: throw modc::CompileError("unknown precision " + std::to_string(precision));
    }
    if (options->set_count && (!options->set_names || !options->set_values))
        throw modc::CompileError("set_count is " + std::to_string(options->set_count) +
                                 " but set_names or set_values is NULL");
    for (std::size_t i = 0; i < options->set_count; ++i) {
        if (!options->set_names[i] || !options->set_values[i])
            throw modc::CompileError("set_names[" + std::to_string(i) + "] or set_values[" + std::to_string(i) +
                                     "] is NULL");
        o.set[options->set_names[i]] = options->set_values[i];
    }
    return o;
}

modc::OptimizerOptions optimizer_options(const char* optimizer, const modc_compile_options* options) {
    modc::OptimizerOptions o;
    static_cast<modc::CompileOptions&>(o) = compile_options(options);
    if (optimizer) o.optimizer = optimizer;
    return o;
}

template <class T>
int dualize(modc_dualizer* d, const T* const* grads, T* const* updates, char** error) {
    return guard_status(error, [&] {
        require(d, "the dualizer");
        require(grads, "grads");
        require(updates, "updates");
        d->dualizer.run(grads, updates);
    });
}

const modc::WeightInfo* weight(const std::vector<modc::WeightInfo>& weights, size_t i) {
    return i < weights.size() ? &weights[i] : nullptr;
}

size_t shape_of(const modc::WeightInfo* w, int64_t* dims) {
    if (!w) return 0;
    if (dims)
        for (size_t k = 0; k < w->shape.size(); ++k) dims[k] = w->shape[k];
    return w->shape.size();
}

template <class T>
int step(modc_optimizer* o, T* const* weights, const T* const* grads, char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        require(weights, "weights");
        require(grads, "grads");
        for (size_t i = 0; i < o->optimizer.weights().size(); ++i)
            if (!weights[i] || !grads[i])
                throw std::invalid_argument("weights[" + std::to_string(i) + "] or grads[" + std::to_string(i) +
                                            "] is NULL");
        o->optimizer.step(weights, grads);
    });
}

}  // namespace

extern "C" {

modc_dualizer* modc_compile_file_with(const char* path, const modc_compile_options* options, char** error) {
    return guard(error, static_cast<modc_dualizer*>(nullptr), [&] {
        modc::CompileOptions o = compile_options(options);
        if (!path) throw modc::CompileError("no path given");
        return new modc_dualizer{modc::compile_file(path, o)};
    });
}

modc_dualizer* modc_compile_file(const char* path, const char* network, const char* schedule, modc_dtype dtype,
                                 char** error) {
    modc_compile_options options{};  // the defaults (the CPU, device 0), but for these
    options.network = network;
    options.schedule = schedule;
    options.dtype = dtype;
    return modc_compile_file_with(path, &options, error);
}

modc_dualizer* modc_compile_source(const char* name, const char* text, const modc_compile_options* options,
                                   char** error) {
    return guard(error, static_cast<modc_dualizer*>(nullptr), [&] {
        modc::CompileOptions o = compile_options(options);
        if (!text) throw modc::CompileError("no text given");
        return new modc_dualizer{modc::compile_source_text(name ? name : "<text>", text, o)};
    });
}

void modc_free(modc_dualizer* d) { delete d; }
void modc_free_string(char* s) { std::free(s); }

size_t modc_weight_count(const modc_dualizer* d) { return d->dualizer.weights().size(); }

const char* modc_weight_path(const modc_dualizer* d, size_t i) {
    const modc::WeightInfo* w = weight(d->dualizer.weights(), i);
    return w ? w->path.c_str() : nullptr;
}

size_t modc_weight_shape(const modc_dualizer* d, size_t i, int64_t* dims) {
    return shape_of(weight(d->dualizer.weights(), i), dims);
}

int modc_dualize_f32(modc_dualizer* d, const float* const* grads, float* const* updates, char** error) {
    return dualize(d, grads, updates, error);
}

int modc_dualize_f64(modc_dualizer* d, const double* const* grads, double* const* updates, char** error) {
    return dualize(d, grads, updates, error);
}

int modc_dualize_bf16(modc_dualizer* d, const uint16_t* const* grads, uint16_t* const* updates, char** error) {
    return dualize(d, grads, updates, error);
}

int modc_dualize_device(modc_dualizer* d, const void* const* grads, void* const* updates, void* stream, char** error) {
    return guard_status(error, [&] {
        require(d, "the dualizer");
        require(grads, "grads");
        require(updates, "updates");
        d->dualizer.run_device(grads, updates, stream);
    });
}

// The optimizer.

modc_optimizer* modc_optimizer_compile_file(const char* path, const char* optimizer,
                                            const modc_compile_options* options, char** error) {
    return guard(error, static_cast<modc_optimizer*>(nullptr), [&] {
        modc::OptimizerOptions o = optimizer_options(optimizer, options);
        if (!path) throw modc::CompileError("no path given");
        return new modc_optimizer{modc::compile_optimizer_file(path, o)};
    });
}

modc_optimizer* modc_optimizer_compile_source(const char* name, const char* text, const char* optimizer,
                                              const modc_compile_options* options, char** error) {
    return guard(error, static_cast<modc_optimizer*>(nullptr), [&] {
        modc::OptimizerOptions o = optimizer_options(optimizer, options);
        if (!text) throw modc::CompileError("no text given");
        return new modc_optimizer{modc::compile_optimizer_text(name ? name : "<text>", text, o)};
    });
}

void modc_optimizer_free(modc_optimizer* o) { delete o; }

const char* modc_optimizer_name(const modc_optimizer* o) { return o->optimizer.name().c_str(); }

size_t modc_optimizer_weight_count(const modc_optimizer* o) { return o->optimizer.weights().size(); }

const char* modc_optimizer_weight_path(const modc_optimizer* o, size_t i) {
    const modc::WeightInfo* w = weight(o->optimizer.weights(), i);
    return w ? w->path.c_str() : nullptr;
}

size_t modc_optimizer_weight_shape(const modc_optimizer* o, size_t i, int64_t* dims) {
    return shape_of(weight(o->optimizer.weights(), i), dims);
}

double modc_optimizer_weight_target(const modc_optimizer* o, size_t i) {
    const modc::WeightInfo* w = weight(o->optimizer.weights(), i);
    return w ? w->target : std::numeric_limits<double>::quiet_NaN();
}

double modc_optimizer_weight_scale(const modc_optimizer* o, size_t i) {
    const modc::WeightInfo* w = weight(o->optimizer.weights(), i);
    return w ? w->scale : std::numeric_limits<double>::quiet_NaN();
}

size_t modc_optimizer_hyper_count(const modc_optimizer* o) { return o->optimizer.hyperparameters().size(); }

const char* modc_optimizer_hyper_name(const modc_optimizer* o, size_t i) {
    const auto& names = o->optimizer.hyperparameters();
    return i < names.size() ? names[i].c_str() : nullptr;
}

int modc_optimizer_get_hyper(const modc_optimizer* o, const char* name, double* value, char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        require(name, "the hyperparameter name");
        require(value, "value");
        *value = o->optimizer.hyperparameter(name);
    });
}

int modc_optimizer_set_hyper(modc_optimizer* o, const char* name, double value, char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        require(name, "the hyperparameter name");
        o->optimizer.set_hyperparameter(name, value);
    });
}

size_t modc_optimizer_state_count(const modc_optimizer* o) { return o->optimizer.state_names().size(); }

const char* modc_optimizer_state_name(const modc_optimizer* o, size_t i) {
    const auto& names = o->optimizer.state_names();
    return i < names.size() ? names[i].c_str() : nullptr;
}

int modc_optimizer_has_state(const modc_optimizer* o, const char* name, size_t weight) {
    return o && name && o->optimizer.has_state(name, weight) ? 1 : 0;
}

int modc_optimizer_read_state(const modc_optimizer* o, const char* name, size_t weight, void* data, char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        require(name, "the state name");
        require(data, "data");
        o->optimizer.read_state(name, weight, data);
    });
}

int modc_optimizer_write_state(modc_optimizer* o, const char* name, size_t weight, const void* data, char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        require(name, "the state name");
        require(data, "data");
        o->optimizer.write_state(name, weight, data);
    });
}

int modc_optimizer_zero_state(modc_optimizer* o, char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        o->optimizer.zero_state();
    });
}

long long modc_optimizer_steps(const modc_optimizer* o) { return o->optimizer.steps(); }

int modc_optimizer_set_steps(modc_optimizer* o, long long steps, char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        o->optimizer.set_steps(steps);
    });
}

int modc_optimizer_step_f32(modc_optimizer* o, float* const* weights, const float* const* grads, char** error) {
    return step(o, weights, grads, error);
}

int modc_optimizer_step_f64(modc_optimizer* o, double* const* weights, const double* const* grads, char** error) {
    return step(o, weights, grads, error);
}

int modc_optimizer_step_device(modc_optimizer* o, void* const* weights, const void* const* grads, void* stream,
                               char** error) {
    return guard_status(error, [&] {
        require(o, "the optimizer");
        require(weights, "weights");
        require(grads, "grads");
        o->optimizer.step_device(weights, grads, stream);
    });
}

}  // extern "C"
