#include "tools/modc/dualize.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <new>
#include <utility>

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
        add(phase, std::chrono::duration<double>(now - last_).count());
        last_ = now;
    }
    void add(const char* phase, double seconds) {
        char line[96];
        std::snprintf(line, sizeof line, "%s%s %.3f s", text_.empty() ? "" : ", ", phase, seconds);
        text_ += line;
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
    if (!runs_cuda(dualizer.backend()) || !timing || std::atoi(timing) <= 0) return;
    std::vector<double> ms;
    for (int i = 0; i < std::atoi(timing); ++i) {
        dualizer.run(in.data(), out.data());
        ms.push_back(dualizer.last_run_ms());
    }
    std::sort(ms.begin(), ms.end());
    std::fprintf(stderr, "modc: cuda: %s; dualization %.3f ms (median of %zu runs, GPU time without copies)\n",
                 dualizer.device().c_str(), ms[ms.size() / 2], ms.size());
}

// An update's memory: anonymous pages, touched only as the run writes them and returned to the
// system by release() (malloc might keep them).
class UpdateBuffer {
public:
    explicit UpdateBuffer(std::size_t bytes) : size_(bytes) {
        if (size_ == 0) return;
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        data_ = static_cast<std::byte*>(p);
    }
    UpdateBuffer(UpdateBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(o.size_) {}
    UpdateBuffer(const UpdateBuffer&) = delete;
    UpdateBuffer& operator=(const UpdateBuffer&) = delete;
    ~UpdateBuffer() { release(); }
    std::byte* data() const { return data_; }
    void release() {
        if (data_) ::munmap(data_, size_);
        data_ = nullptr;
    }

private:
    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace

int run_dualize(const DualizeArgs& a, const DualPlan& plan) {
    PhaseTimes times;
    // The gradients are views of the mapped input file (no copy).
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
    for (auto& g : grads) g.data.release_pages();  // checked; the run reads them again one by one
    times.lap("check");
    CompileOptions options = a.options;
    const rt::DType dtype = grads.empty() ? rt::DType::F32 : grads.front().dtype;
    options.dtype = dtype == rt::DType::F64 ? DType::F64 : dtype == rt::DType::BF16 ? DType::BF16 : DType::F32;

    // Gradients in weight order, whatever order the file had them in.
    std::map<std::string, rt::Tensor*> by_name;
    for (auto& g : grads) by_name[g.name] = &g;
    std::vector<rt::Tensor*> in_order;
    std::vector<rt::TensorLayout> layout;
    for (const auto& l : plan.leaves) {
        in_order.push_back(by_name.at(l.path));
        layout.push_back({l.path, in_order.back()->dtype, in_order.back()->shape});
    }
    try {
        Dualizer dualizer = compile_source_text(a.file, a.text, options);
        times.lap("compile");
        // Updates stream out: each is written into the output's temporary file as soon as the
        // run completes it, then its memory and its gradient's pages are released, so that only
        // the updates in flight are resident with the work buffers, not every gradient and update.
        rt::TensorFileWriter writer(a.output, layout);
        std::vector<UpdateBuffer> updates;
        for (const auto* g : in_order) updates.emplace_back(g->data.size());
        std::atomic<double> writing{0};  // seconds, summed over the run's threads
        auto done = [&](std::size_t i) {
            auto start = std::chrono::steady_clock::now();
            writer.write(i, updates[i].data());
            updates[i].release();
            in_order[i]->data.release_pages();
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            for (double w = writing; !writing.compare_exchange_weak(w, w + s);) {
            }
        };
        auto run_typed = [&](auto zero) {
            using T = decltype(zero);
            std::vector<const T*> in;
            std::vector<T*> out;
            for (std::size_t i = 0; i < updates.size(); ++i) {
                in.push_back(in_order[i]->template as<T>().ptr);
                out.push_back(reinterpret_cast<T*>(updates[i].data()));
            }
            cuda_timing(dualizer, in, out);  // before the run that writes: these runs release nothing
            dualizer.run(in.data(), out.data(), done);
        };
        switch (dtype) {
            case rt::DType::F32: run_typed(0.0f); break;
            case rt::DType::F64: run_typed(0.0); break;
            case rt::DType::BF16: run_typed(std::uint16_t{0}); break;
        }
        times.lap("run");
        times.add("of which writing", writing);
        writer.commit();
    } catch (const BackendError& e) {
        return fail(e.what());
    } catch (const rt::TensorError& e) {
        return fail(e.what());
    }
    times.lap("commit");
    return 0;
}

}  // namespace modc
