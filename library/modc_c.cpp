// The C API (modc.h) over the C++ one.
#include "library/modc.h"

#include <cstdlib>
#include <cstring>

#include "library/modc.hpp"

struct modc_dualizer {
    modc::Dualizer dualizer;
};

namespace {

void set_error(char** error, const std::string& message) {
    if (!error) return;
    *error = static_cast<char*>(std::malloc(message.size() + 1));
    if (*error) std::memcpy(*error, message.c_str(), message.size() + 1);
}

template <class T>
int dualize(modc_dualizer* d, const T* const* grads, T* const* updates, char** error) {
    try {
        d->dualizer.run(grads, updates);
        return 0;
    } catch (const std::exception& e) {
        set_error(error, e.what());
        return -1;
    }
}

}  // namespace

extern "C" {

modc_dualizer* modc_compile_file_with(const char* path, const modc_compile_options* options, char** error) {
    try {
        modc::CompileOptions o;
        if (options) {
            if (options->network) o.network = options->network;
            if (options->schedule) o.schedule = options->schedule;
            switch (options->dtype) {
                case MODC_F32: o.dtype = modc::DType::F32; break;
                case MODC_F64: o.dtype = modc::DType::F64; break;
                case MODC_BF16: o.dtype = modc::DType::BF16; break;
                default: throw modc::CompileError("unknown dtype " + std::to_string(static_cast<int>(options->dtype)));
            }
            switch (options->backend) {
                case MODC_CPU: o.backend = modc::Backend::Cpu; break;
                case MODC_CUDA: o.backend = modc::Backend::Cuda; break;
                default: throw modc::CompileError("unknown backend " + std::to_string(static_cast<int>(options->backend)));
            }
            o.gram = options->no_gram == 0;
            o.threads = options->threads;
        }
        if (!path) throw modc::CompileError("no path given");
        return new modc_dualizer{modc::compile_file(path, o)};
    } catch (const std::exception& e) {
        set_error(error, e.what());
        return nullptr;
    }
}

modc_dualizer* modc_compile_file(const char* path, const char* network, const char* schedule, modc_dtype dtype,
                                 char** error) {
    modc_compile_options options{network, schedule, dtype, MODC_CPU, 0, 0};
    return modc_compile_file_with(path, &options, error);
}

void modc_free(modc_dualizer* d) { delete d; }
void modc_free_string(char* s) { std::free(s); }

size_t modc_weight_count(const modc_dualizer* d) { return d->dualizer.weights().size(); }

const char* modc_weight_path(const modc_dualizer* d, size_t i) {
    return i < d->dualizer.weights().size() ? d->dualizer.weights()[i].path.c_str() : nullptr;
}

size_t modc_weight_shape(const modc_dualizer* d, size_t i, int64_t* dims) {
    if (i >= d->dualizer.weights().size()) return 0;
    const auto& shape = d->dualizer.weights()[i].shape;
    if (dims)
        for (size_t k = 0; k < shape.size(); ++k) dims[k] = shape[k];
    return shape.size();
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

}  // extern "C"
