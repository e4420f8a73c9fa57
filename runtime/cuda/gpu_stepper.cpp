#include "runtime/cuda/gpu_stepper.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "runtime/cuda/driver.hpp"
#include "runtime/cuda/sim/sim.hpp"
#include "support/diagnostics.hpp"

namespace modc::cuda {

struct GpuStepper::Impl {
    StepProgram program;
    step::StepPlan plan;
    std::vector<std::int64_t> elements;
    std::vector<GpuStepper::Constants> constants;
    GpuDualizer& dualizer;
    const Driver& cu;
    CUdevice device = 0;
    CUcontext context = nullptr;
    CUmodule module = nullptr;
    CUstream stream = nullptr;  // for the host path and the state copies
    CUevent done = nullptr;     // recorded after each step: what comes next, on any stream, waits for it
    std::map<std::int64_t, std::vector<CUfunction>> kernels;  // [n][segment]
    std::vector<std::vector<CUdeviceptr>> vars, in, out;      // [variable or dualize call][weight]
    std::vector<CUdeviceptr> host_weights, host_grads;        // step_host's copies, by weight
    std::size_t element_size = 4;

    Impl(StepProgram p, step::StepPlan sp, std::vector<std::int64_t> e, std::vector<GpuStepper::Constants> c,
         GpuDualizer& d, const Driver& driver)
        : program(std::move(p)), plan(std::move(sp)), elements(std::move(e)), constants(std::move(c)), dualizer(d), cu(driver) {
        element_size = program.type == ElementType::F64 ? 8 : 4;
    }

    ~Impl() {
        if (context) release_device(cu, context, device, [this] { release(); });
    }

    // Everything made on the device (release_device makes its context current).
    void release() {
        if (done) cu.cuEventSynchronize(done);  // the last step, on whichever stream, no longer uses the buffers
        for (auto* group : {&vars, &in, &out})
            for (auto& tensors : *group)
                for (CUdeviceptr p : tensors)
                    if (p) cu.cuMemFree(p);
        for (auto* tensors : {&host_weights, &host_grads})
            for (CUdeviceptr p : *tensors)
                if (p) cu.cuMemFree(p);
        if (done) cu.cuEventDestroy(done);
        if (stream) cu.cuStreamDestroy(stream);
        if (module) cu.cuModuleUnload(module);
    }

    void check(CUresult r, const char* what) const { cuda::check(cu, r, what); }
    std::size_t bytes(std::size_t weight) const { return static_cast<std::size_t>(elements[weight]) * element_size; }

    // One device tensor per weight (none for an empty weight).
    std::vector<CUdeviceptr> tensors() const {
        std::vector<CUdeviceptr> t(elements.size(), 0);
        for (std::size_t i = 0; i < elements.size(); ++i)
            if (bytes(i)) check(cu.cuMemAlloc(&t[i], bytes(i)), "cuMemAlloc");
        return t;
    }

    void setup(const GpuOptions& options) {
        context = retain_device(cu, options.device, &device);
        ContextScope scope(cu, context);
        module = load_module(cu, device, program.source, program.optimizer + "_step.cu", program.kernels, options).module;
        for (std::int64_t n : std::vector<std::int64_t>(elements))
            if (!kernels.count(n))
                for (std::size_t k = 0; k < plan.segments.size(); ++k) {
                    const std::string name = KernelNames::step(k, n);
                    CUfunction f = nullptr;
                    check(cu.cuModuleGetFunction(&f, module, name.c_str()), ("cuModuleGetFunction(" + name + ")").c_str());
                    kernels[n].push_back(f);
                }
        check(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        check(cu.cuEventCreate(&done, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        for (std::size_t v = 0; v < plan.vars.size(); ++v) vars.push_back(tensors());
        for (int d = 0; d < plan.dual_count; ++d) {
            in.push_back(tensors());
            out.push_back(tensors());
        }
        zero_state();
    }

    // Starts work on stream s after every step enqueued so far (in the context: see ContextScope).
    void after_steps(CUstream s) const {
        check(cu.cuStreamWaitEvent(s, done, 0), "cuStreamWaitEvent");
    }

    void step(const CUdeviceptr* weights, const CUdeviceptr* grads, const double* hypers, long long step, CUstream s) {
        ContextScope scope(cu, context);
        after_steps(s);
        const std::size_t buffers = static_cast<std::size_t>(plan.buffer_count());
        std::vector<CUdeviceptr> pointers(buffers);
        // The kernels' scalars (codegen_cuda_step.hpp): the hyperparameters, the step count, the
        // weight's numbers (set per launch below).
        std::vector<double> values(hypers, hypers + plan.hypers.size());
        values.push_back(static_cast<double>(step));
        values.resize(values.size() + step::kWeightConsts);
        std::vector<void*> params;
        for (auto& p : pointers) params.push_back(&p);
        for (auto& h : values) params.push_back(&h);
        for (std::size_t k = 0; k < plan.segments.size(); ++k) {
            for (std::size_t i = 0; i < elements.size(); ++i) {
                const std::int64_t n = elements[i];
                if (n == 0) continue;
                pointers[static_cast<std::size_t>(step::StepPlan::weight_buffer())] = weights[i];
                pointers[static_cast<std::size_t>(step::StepPlan::grad_buffer())] = grads[i];
                std::copy(constants[i].begin(), constants[i].end(), values.end() - step::kWeightConsts);
                for (std::size_t v = 0; v < vars.size(); ++v) pointers[static_cast<std::size_t>(plan.var_buffer(static_cast<int>(v)))] = vars[v][i];
                for (int d = 0; d < plan.dual_count; ++d) {
                    pointers[static_cast<std::size_t>(plan.dual_in_buffer(d))] = in[static_cast<std::size_t>(d)][i];
                    pointers[static_cast<std::size_t>(plan.dual_out_buffer(d))] = out[static_cast<std::size_t>(d)][i];
                }
                const auto blocks = static_cast<unsigned>(
                    std::clamp<std::int64_t>((n + program.block - 1) / program.block, 1, program.max_grid));
                // The driver reads the parameters when the launch is enqueued, so they may change after.
                check(cu.cuLaunchKernel(kernels.at(n)[k], blocks, 1, 1, program.block, 1, 1, 0, s, params.data(), nullptr),
                      "cuLaunchKernel(step)");
            }
            for (const auto& call : plan.segments[k].duals) {
                const auto d = static_cast<std::size_t>(call.dual);
                std::vector<const void*> ins;
                std::vector<void*> outs;
                for (std::size_t i = 0; i < elements.size(); ++i) {
                    ins.push_back(reinterpret_cast<const void*>(in[d][i]));
                    outs.push_back(reinterpret_cast<void*>(out[d][i]));
                }
                dualizer.run_device(ins.data(), outs.data(), s);
            }
        }
        check(cu.cuEventRecord(done, s), "cuEventRecord");
    }

    void zero_state() {
        ContextScope scope(cu, context);
        after_steps(stream);
        for (std::size_t v = 0; v < plan.vars.size(); ++v)
            if (plan.vars[v].state)
                for (std::size_t i = 0; i < elements.size(); ++i)
                    if (bytes(i)) check(cu.cuMemsetD8Async(vars[v][i], 0, bytes(i), stream), "cuMemsetD8Async");
        check(cu.cuStreamSynchronize(stream), "zeroing the optimizer state");
    }
};

GpuStepper::GpuStepper(StepProgram program, step::StepPlan plan, std::vector<std::int64_t> elements,
                       std::vector<Constants> constants, GpuDualizer& dualizer, const GpuOptions& options) {
    std::string why;
    const Driver* driver = options.simulate ? &sim::driver() : load_driver(&why);
    if (!driver) throw GpuError(why);
    MODC_ASSERT(program.kernels.size() == plan.segments.size() * std::set<std::int64_t>(elements.begin(), elements.end()).size(),
                "a step program generated for other weights");
    MODC_ASSERT(constants.size() == elements.size(), "the stepper needs the numbers of every weight");
    impl_ = std::make_unique<Impl>(std::move(program), std::move(plan), std::move(elements), std::move(constants), dualizer, *driver);
    impl_->setup(options);
}

GpuStepper::~GpuStepper() = default;

const step::StepPlan& GpuStepper::plan() const { return impl_->plan; }

void GpuStepper::step_device(void* const* weights, const void* const* grads, const double* hypers, long long step,
                             CUstream stream) {
    std::vector<CUdeviceptr> w, g;
    for (std::size_t i = 0; i < impl_->elements.size(); ++i) {
        w.push_back(reinterpret_cast<CUdeviceptr>(weights[i]));
        g.push_back(reinterpret_cast<CUdeviceptr>(grads[i]));
    }
    impl_->step(w.data(), g.data(), hypers, step, stream);
}

void GpuStepper::step_host(void* const* weights, const void* const* grads, const double* hypers, long long step) {
    Impl& m = *impl_;
    ContextScope scope(m.cu, m.context);
    if (m.host_weights.empty()) {
        m.host_weights = m.tensors();
        m.host_grads = m.tensors();
    }
    m.after_steps(m.stream);
    for (std::size_t i = 0; i < m.elements.size(); ++i)
        if (m.bytes(i)) {
            m.check(m.cu.cuMemcpyHtoDAsync(m.host_weights[i], weights[i], m.bytes(i), m.stream), "cuMemcpyHtoDAsync");
            m.check(m.cu.cuMemcpyHtoDAsync(m.host_grads[i], grads[i], m.bytes(i), m.stream), "cuMemcpyHtoDAsync");
        }
    m.step(m.host_weights.data(), m.host_grads.data(), hypers, step, m.stream);
    for (std::size_t i = 0; i < m.elements.size(); ++i)
        if (m.bytes(i)) m.check(m.cu.cuMemcpyDtoHAsync(weights[i], m.host_weights[i], m.bytes(i), m.stream), "cuMemcpyDtoHAsync");
    m.check(m.cu.cuStreamSynchronize(m.stream), "the optimizer step");
}

void GpuStepper::read_var(int v, std::size_t weight, void* data) const {
    const Impl& m = *impl_;
    const std::size_t bytes = m.bytes(weight);
    ContextScope scope(m.cu, m.context);
    m.after_steps(m.stream);
    if (bytes)
        m.check(m.cu.cuMemcpyDtoHAsync(data, m.vars.at(static_cast<std::size_t>(v)).at(weight), bytes, m.stream), "cuMemcpyDtoHAsync");
    m.check(m.cu.cuStreamSynchronize(m.stream), "reading the optimizer state");
}

void GpuStepper::write_var(int v, std::size_t weight, const void* data) {
    Impl& m = *impl_;
    const std::size_t bytes = m.bytes(weight);
    ContextScope scope(m.cu, m.context);
    m.after_steps(m.stream);
    if (bytes)
        m.check(m.cu.cuMemcpyHtoDAsync(m.vars.at(static_cast<std::size_t>(v)).at(weight), data, bytes, m.stream), "cuMemcpyHtoDAsync");
    m.check(m.cu.cuStreamSynchronize(m.stream), "writing the optimizer state");
}

void GpuStepper::zero_state() { impl_->zero_state(); }

}  // namespace modc::cuda
