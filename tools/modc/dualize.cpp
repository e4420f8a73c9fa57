#include "tools/modc/dualize.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>

#include "runtime/tensor_io.hpp"

namespace modc {

namespace {

int fail(const std::string& message) {
    std::cerr << "modc: error: " << message << '\n';
    return 1;
}

// Seconds since the previous lap, per phase, for MODC_PHASE_TIMES.
class PhaseTimes {
public:
    void lap(const char* phase) {
        auto now = std::chrono::steady_clock::now();
        text_ += std::string(text_.empty() ? "" : ", ") + phase + " " +
                 std::to_string(std::chrono::duration<double>(now - last_).count()).substr(0, 6) + " s";
        last_ = now;
    }
    ~PhaseTimes() {
        const char* wanted = std::getenv("MODC_PHASE_TIMES");
        if (wanted && *wanted && std::string(wanted) != "0") std::cerr << "modc: phases: " << text_ << '\n';
    }

private:
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
    std::string text_;
};

// MODC_CUDA_TIMING=N: N more runs on the GPU, and a line on stderr with the median GPU time.
template <class T>
void cuda_timing(Dualizer& dualizer, const std::vector<const T*>& in, const std::vector<T*>& out) {
    const char* timing = std::getenv("MODC_CUDA_TIMING");
    if (dualizer.backend() != Backend::Cuda || !timing || std::atoi(timing) <= 0) return;
    std::vector<double> ms;
    for (int i = 0; i < std::atoi(timing); ++i) {
        dualizer.run(in.data(), out.data());
        ms.push_back(dualizer.last_run_ms());
    }
    std::sort(ms.begin(), ms.end());
    std::fprintf(stderr, "modc: cuda: %s; dualization %.3f ms (median of %zu runs, GPU time without copies)\n",
                 dualizer.device().c_str(), ms[ms.size() / 2], ms.size());
}

}  // namespace

int run_dualize(const DualizeArgs& a, const DualPlan& plan) {
    PhaseTimes times;
    // The gradients are views of the mapped input file (no copy); only the updates are allocated.
    std::vector<rt::Tensor> grads;
    try {
        grads = rt::read_tensors(a.input);
    } catch (const rt::TensorError& e) {
        return fail(e.what());
    }
    times.lap("read");
    std::vector<rt::TensorSpec> specs;
    for (const auto& l : plan.leaves) specs.push_back({l.path, l.shape});
    auto problems = rt::validate(grads, specs);
    if (!problems.empty()) {
        for (const auto& p : problems) std::cerr << "modc: error: " << a.input << ": " << p << '\n';
        std::cerr << "modc: nothing was written\n";
        return 1;
    }
    times.lap("check");
    CompileOptions options = a.options;
    const rt::DType dtype = grads.empty() ? rt::DType::F32 : grads.front().dtype;
    options.dtype = dtype == rt::DType::F64 ? DType::F64 : dtype == rt::DType::BF16 ? DType::BF16 : DType::F32;

    // Gradients in weight order, whatever order the file had them in; updates of the same dtype,
    // allocated once compiling has checked the memory they need.
    std::map<std::string, rt::Tensor*> by_name;
    for (auto& g : grads) by_name[g.name] = &g;
    std::vector<rt::Tensor> updates;
    try {
        Dualizer dualizer = compile_source_text(a.file, a.text, options);
        times.lap("compile");
        for (const auto& l : plan.leaves) {
            const rt::Tensor& g = *by_name.at(l.path);
            updates.push_back(rt::Tensor{l.path, g.dtype, g.shape, std::vector<std::byte>(g.data.size())});
        }
        auto run_typed = [&](auto zero) {
            using T = decltype(zero);
            std::vector<const T*> in;
            std::vector<T*> out;
            for (std::size_t i = 0; i < updates.size(); ++i) {
                in.push_back(by_name.at(updates[i].name)->template as<T>().ptr);
                out.push_back(updates[i].template as<T>().ptr);
            }
            dualizer.run(in.data(), out.data());
            cuda_timing(dualizer, in, out);
        };
        switch (dtype) {
            case rt::DType::F32: run_typed(0.0f); break;
            case rt::DType::F64: run_typed(0.0); break;
            case rt::DType::BF16: run_typed(std::uint16_t{0}); break;
        }
    } catch (const BackendError& e) {
        return fail(e.what());
    }
    times.lap("run");
    grads.clear();  // unmapped: the pages of the gradients are no longer needed
    try {
        rt::write_tensors(a.output, updates);
    } catch (const rt::TensorError& e) {
        return fail(e.what());
    }
    times.lap("write");
    return 0;
}

}  // namespace modc
