// The CUDA backend's device path (Dualizer::run_device, Optimizer::step_device, their C forms)
// without a GPU, on the cuda-sim backend: its simulated driver and cuBLAS (runtime/cuda/sim) run
// the very runtime/cuda code, and its device memory is host memory, so host vectors serve as
// device tensors. Checked, per dtype:
//   - run_device gives the host run's updates bit for bit, on the caller's stream, without
//     synchronising it (the cubic schedule's convergence checks excepted);
//   - four steps of an optimizer with state, weight decay and two dualize calls on the GPU
//     (step_device on two streams, and the host step() between) give the CPU backend's, on
//     Gaussian and ill-conditioned (singular values 1/i) gradients, with the hyperparameters
//     changed and the state read, compared and rewritten between steps;
//   - the C API's device functions; the host step() and step_device agree bit for bit;
// and that the CPU backend refuses the device entry points clearly.
#include <catch2/catch.hpp>


#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "library/modc.h"
#include "library/modc.hpp"
#ifdef MODC_WITH_CUDA
#include "runtime/cuda/sim/sim.hpp"
#endif
#include "spectra.hpp"
#include "support.hpp"

using namespace modc;
using Catch::Matchers::Contains;

namespace {

// Three shapes: a wide matrix (Gram Newton-Schulz), a square one, a tall one (transposed). The
// optimizer has state (m), a temporary (t), decoupled weight decay and two dualize calls.
const char* kText = R"(network net = (Linear(12, 40) as head) @ ReLU @ (Linear(40, 40) as hidden) @ ReLU @ (Linear(40, 8) as input)

optimizer full(lr = 0.05, beta = 0.9, wd = 0.01, mix = 0.25) {
    m = beta * m + grad
    W -= lr * wd * W
    t = grad + beta * m
    W -= lr * (dualize(t) + mix * dualize(m))
}
)";

template <class T>
using Tensors = std::vector<std::vector<T>>;

template <class T>
std::vector<const void*> in(const Tensors<T>& t) {
    std::vector<const void*> out;
    for (const auto& x : t) out.push_back(x.data());
    return out;
}
template <class T>
std::vector<void*> out(Tensors<T>& t) {
    std::vector<void*> p;
    for (auto& x : t) p.push_back(x.data());
    return p;
}
template <class T>
std::vector<T*> typed(Tensors<T>& t) {
    std::vector<T*> p;
    for (auto& x : t) p.push_back(x.data());
    return p;
}
template <class T>
std::vector<const T*> typed_in(const Tensors<T>& t) {
    std::vector<const T*> p;
    for (const auto& x : t) p.push_back(x.data());
    return p;
}

// Gaussian values per weight; with `spectrum`, each matrix then gets those singular values.
template <class T>
Tensors<T> gradients(const std::vector<WeightInfo>& weights, std::mt19937& rng, test::Spectrum spectrum, double scale = 1) {
    std::normal_distribution<double> normal;
    Tensors<T> out;
    for (const auto& w : weights) {
        std::vector<T> g(static_cast<std::size_t>(w.elements()));
        for (auto& v : g) v = static_cast<T>(scale * normal(rng));
        if (w.shape.size() == 2) test::give_spectrum(g, w.shape[0], w.shape[1], spectrum, rng);
        out.push_back(std::move(g));
    }
    return out;
}

// max over weights of ||a_i - b_i|| / ||b_i|| (||a_i - b_i|| where b_i = 0).
template <class T>
double relative_error(const Tensors<T>& a, const Tensors<T>& b) {
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        double diff = 0, ref = 0;
        for (std::size_t e = 0; e < a[i].size(); ++e) {
            const double d = static_cast<double>(a[i][e]) - static_cast<double>(b[i][e]);
            diff += d * d;
            ref += static_cast<double>(b[i][e]) * static_cast<double>(b[i][e]);
        }
        const double err = ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
        worst = std::isfinite(err) ? std::max(worst, err) : INFINITY;
    }
    return worst;
}

template <class T>
Tensors<T> minus(const Tensors<T>& a, const Tensors<T>& b) {
    Tensors<T> d = a;
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t e = 0; e < a[i].size(); ++e) d[i][e] = a[i][e] - b[i][e];
    return d;
}

template <class T>
Tensors<T> state_of(const Optimizer& o) {
    Tensors<T> m;
    for (std::size_t i = 0; i < o.weights().size(); ++i) {
        m.emplace_back(static_cast<std::size_t>(o.weights()[i].elements()));
        o.read_state("m", i, m.back().data());
    }
    return m;
}

#ifdef MODC_WITH_CUDA

// What the simulator counted on a stream: work enqueued, synchronisations.
struct Counts {
    long enqueued = 0, synchronized = 0;
};
Counts counts(void* stream) {
    Counts c;
    cuda::sim::stream_counts(static_cast<CUstream>(stream), &c.enqueued, &c.synchronized);
    return c;
}

template <class T>
void device_path(const std::string& mod, const std::string& schedule, double tolerance) {
    const bool cubic = schedule == "cubic";
    void* const stream1 = reinterpret_cast<void*>(std::uintptr_t{0x5eed01});
    void* const stream2 = reinterpret_cast<void*>(std::uintptr_t{0x5eed02});
    OptimizerOptions options;
    options.schedule = schedule;
    options.dtype = std::is_same_v<T, double> ? DType::F64 : DType::F32;
    options.optimizer = "full";
    options.threads = 1;
    options.backend = Backend::CudaSim;
    options.precision = Precision::F32;  // the device path against the CPU's f32 (bf16 GEMMs: test_cuda.cpp)
    std::mt19937 rng(5);

    // The dualizer: run_device against run, bit for bit, on Gaussian and ill-conditioned gradients.
    Dualizer gpu = compile_file(mod, options);
    for (auto spectrum : {test::Spectrum::Gaussian, test::Spectrum::Decay1}) {
        const Tensors<T> grads = gradients<T>(gpu.weights(), rng, spectrum);
        Tensors<T> host = grads, device = grads, legacy = grads;
        gpu.run(typed_in(grads).data(), typed(host).data());
        const Counts before = counts(stream1);
        gpu.run_device(in(grads).data(), out(device).data(), stream1);
        const Counts after = counts(stream1);
        gpu.run_device(in(grads).data(), out(legacy).data(), nullptr);  // the legacy default stream
        CHECK(device == host);
        CHECK(legacy == host);
        CHECK(relative_error(host, grads) > 0.1);  // the updates were written
        CHECK(after.enqueued >= before.enqueued + 2 * static_cast<long>(grads.size()) + 1);
        if (cubic)
            CHECK(after.synchronized > before.synchronized);  // the convergence checks read flags on the host
        else
            CHECK(after.synchronized == before.synchronized);
    }

    // The optimizer: the GPU's steps against the CPU backend's.
    Optimizer on_gpu = compile_optimizer_file(mod, options);
    options.backend = Backend::Cpu;
    Optimizer on_cpu = compile_optimizer_file(mod, options);
    REQUIRE(on_gpu.state_names() == std::vector<std::string>{"m"});
    const auto& weights = on_gpu.weights();
    const Tensors<T> start = gradients<T>(weights, rng, test::Spectrum::Gaussian, 0.2);
    Tensors<T> w_cpu = start, w_gpu = start;
    for (int s = 0; s < 4; ++s) {
        INFO("step " << s + 1 << " of " << schedule);
        // Ill-conditioned gradients on odd steps; a learning-rate schedule, and beta changed once.
        const Tensors<T> grads = gradients<T>(weights, rng, s % 2 ? test::Spectrum::Decay1 : test::Spectrum::Gaussian);
        for (Optimizer* o : {&on_cpu, &on_gpu}) {
            o->set_hyperparameter("lr", 0.05 * (1 - 0.2 * s));
            if (s == 2) o->set_hyperparameter("beta", 0.8);
        }
        if (s == 2) {  // a checkpoint: the state read back, compared, changed and written in
            Tensors<T> m_cpu = state_of<T>(on_cpu), m_gpu = state_of<T>(on_gpu);
            CHECK(relative_error(m_gpu, m_cpu) <= tolerance);
            for (auto& t : m_cpu)
                for (auto& v : t) v = static_cast<T>(v * 0.5);
            for (std::size_t i = 0; i < weights.size(); ++i) {
                on_cpu.write_state("m", i, m_cpu[i].data());
                on_gpu.write_state("m", i, m_cpu[i].data());
            }
            CHECK(state_of<T>(on_gpu) == m_cpu);
        }
        const Tensors<T> before_cpu = w_cpu, before_gpu = w_gpu;
        on_cpu.step(typed(w_cpu).data(), typed_in(grads).data());
        if (s == 1) {
            on_gpu.step(typed(w_gpu).data(), typed_in(grads).data());  // host pointers: copied through
        } else {
            void* stream = s == 3 ? stream2 : stream1;
            const Counts c = counts(stream);
            on_gpu.step_device(out(w_gpu).data(), in(grads).data(), stream);
            CHECK(counts(stream).enqueued > c.enqueued);
            if (!cubic) CHECK(counts(stream).synchronized == c.synchronized);
        }
        const double step_error = relative_error(minus(w_gpu, before_gpu), minus(w_cpu, before_cpu));
        const double state_error = relative_error(state_of<T>(on_gpu), state_of<T>(on_cpu));
        INFO("the change of the weights differs by " << step_error << ", the state by " << state_error);
        CHECK(step_error <= tolerance);
        CHECK(state_error <= tolerance);
        CHECK(relative_error(w_gpu, before_gpu) > 1e-4);  // the weights moved
    }
    CHECK(on_gpu.steps() == 4);
    on_gpu.zero_state();
    for (const auto& t : state_of<T>(on_gpu))
        for (T v : t) CHECK(v == T(0));

    // The C API's device functions, against the C++ API's host paths on the same GPU.
    modc_compile_options c_options{};
    c_options.schedule = schedule.c_str();
    c_options.dtype = std::is_same_v<T, double> ? MODC_F64 : MODC_F32;
    c_options.backend = MODC_CUDA_SIM;
    c_options.threads = 1;
    c_options.precision = MODC_PRECISION_F32;  // as the C++ side above
    char* error = nullptr;
    modc_dualizer* d = modc_compile_file_with(mod.c_str(), &c_options, &error);
    INFO((error ? error : ""));
    REQUIRE(d != nullptr);
    const Tensors<T> grads = gradients<T>(weights, rng, test::Spectrum::Decay1);
    Tensors<T> from_c = grads, from_cpp = grads;
    REQUIRE(modc_dualize_device(d, in(grads).data(), out(from_c).data(), stream2, &error) == 0);
    gpu.run(typed_in(grads).data(), typed(from_cpp).data());
    CHECK(from_c == from_cpp);
    modc_free(d);

    modc_optimizer* o = modc_optimizer_compile_file(mod.c_str(), "full", &c_options, &error);
    REQUIRE(o != nullptr);
    options.backend = Backend::CudaSim;
    Optimizer fresh = compile_optimizer_file(mod, options);
    Tensors<T> w_c = start, w_cpp = start;
    REQUIRE(modc_optimizer_step_device(o, out(w_c).data(), in(grads).data(), nullptr, &error) == 0);
    fresh.step(typed(w_cpp).data(), typed_in(grads).data());
    CHECK(w_c == w_cpp);  // step() runs step_device's code, through copies
    REQUIRE(modc_optimizer_zero_state(o, &error) == 0);
    modc_optimizer_free(o);
}

#endif

}  // namespace

TEST_CASE("run_device and step_device on the CPU backend are clear errors", "[api][device]") {
    Dualizer d = compile_source_text("net.mod", kText);
    std::vector<const void*> grads(d.weights().size(), nullptr);
    std::vector<void*> updates(d.weights().size(), nullptr);
    CHECK_THROWS_MATCHES(d.run_device(grads.data(), updates.data(), nullptr), std::invalid_argument,
                         Catch::Matchers::Message("run_device needs the CUDA backend: this dualizer runs on the CPU; use "
                                                  "run() with host pointers, or compile with Backend::Cuda"));
    OptimizerOptions options;
    Optimizer o = compile_optimizer_text("net.mod", kText, options);
    CHECK_THROWS_MATCHES(o.step_device(updates.data(), grads.data(), nullptr), std::invalid_argument,
                         Catch::Matchers::Message("step_device needs the CUDA backend: optimizer 'full' runs on the CPU; use "
                                                  "step() with host pointers, or compile with Backend::Cuda"));
    CHECK(o.steps() == 0);

    char* error = nullptr;
    modc_dualizer* cd = modc_compile_source("net.mod", kText, nullptr, &error);
    REQUIRE(cd != nullptr);
    CHECK(modc_dualize_device(cd, grads.data(), updates.data(), nullptr, &error) == -1);
    REQUIRE(error != nullptr);
    CHECK_THAT(error, Contains("run_device needs the CUDA backend"));
    modc_free_string(error);
    error = nullptr;
    modc_free(cd);
    modc_optimizer* co = modc_optimizer_compile_source("net.mod", kText, nullptr, nullptr, &error);
    REQUIRE(co != nullptr);
    CHECK(modc_optimizer_step_device(co, updates.data(), grads.data(), nullptr, &error) == -1);
    REQUIRE(error != nullptr);
    CHECK_THAT(error, Contains("step_device needs the CUDA backend"));
    modc_free_string(error);
    error = nullptr;
    CHECK(modc_optimizer_step_device(co, nullptr, grads.data(), nullptr, &error) == -1);
    CHECK_THAT(error, Contains("weights is NULL"));
    modc_free_string(error);
    modc_optimizer_free(co);

    // bf16 weights stay refused by the optimizer, whatever the backend.
    options.dtype = DType::BF16;
    CHECK_THROWS_MATCHES(compile_optimizer_text("net.mod", kText, options), CompileError,
                         Catch::Matchers::Predicate<CompileError>([](const CompileError& e) {
                             return std::string(e.what()).find("bf16 weights are not supported yet") != std::string::npos;
                         }));
}

#ifdef MODC_WITH_CUDA

TEST_CASE("run_device and step_device on the cuda-sim backend", "[cuda][sim][device]") {
    ::setenv("MODC_CACHE_DIR", MODC_TEST_CACHE_DIR, 1);
    test::TempDir dir;
    const std::filesystem::path mod = dir.path / "net.mod";
    std::ofstream(mod) << kText;
    // f32 under the default schedule; f64 under cubic, whose convergence checks wait on the stream.
    SECTION("f32, polar-express") { device_path<float>(mod.string(), "polar-express", 3e-5); }
    SECTION("f64, cubic") { device_path<double>(mod.string(), "cubic", 1e-12); }
}

#endif

#ifdef MODC_WITH_CUDA

namespace {

// The simulator's calls in each device's context (runtime/cuda/sim/context_counts.hpp).
struct Calls {
    long on0 = 0, on1 = 0;
};
Calls calls() { return {cuda::sim::calls_in_context(0), cuda::sim::calls_in_context(1)}; }

}  // namespace

// Device 1 of the simulator's two: everything of a dualizer and an optimizer compiled for it
// (module, buffers, streams, cuBLAS handle, graphs, the step's state) is made and used in device
// 1's context, none in device 0's (the simulator refuses a stream, module or handle used in
// another device's context); the caller's current context is the same after each call; the
// results are device 0's, bit for bit; and bad indices are clear errors.
TEST_CASE("the device index on the cuda-sim backend", "[cuda][sim][device]") {
    ::setenv("MODC_CACHE_DIR", MODC_TEST_CACHE_DIR, 1);
    ::unsetenv("MODC_CUDA_SIM_DEVICES");  // the default: two devices
    test::TempDir dir;
    const std::filesystem::path mod = dir.path / "net.mod";
    std::ofstream(mod) << kText;
    void* const stream = reinterpret_cast<void*>(std::uintptr_t{0x5eed03});
    OptimizerOptions options;
    options.optimizer = "full";
    options.threads = 1;
    options.backend = Backend::CudaSim;
    options.precision = Precision::F32;
    std::mt19937 rng(7);

    Dualizer on0 = compile_file(mod, options);
    Calls before = calls();
    options.device = 1;
    Dualizer on1 = compile_file(mod, options);
    CHECK(calls().on1 > before.on1);
    CHECK(calls().on0 == before.on0);
    CHECK_FALSE(cuda::sim::context_current());  // the caller's (none) is current again

    // run and run_device on device 1, with device 0's context current in the caller (as torch
    // keeps its current device's): the work runs in device 1's, and device 0's is current after.
    const cuda::Driver& cu = cuda::sim::driver();
    CUcontext caller = nullptr;
    REQUIRE(cu.cuDevicePrimaryCtxRetain(&caller, 0) == CUDA_SUCCESS);
    REQUIRE(cu.cuCtxPushCurrent(caller) == CUDA_SUCCESS);
    const Tensors<float> grads = gradients<float>(on1.weights(), rng, test::Spectrum::Decay1);
    Tensors<float> want = grads, host = grads, device = grads;
    on0.run(typed_in(grads).data(), typed(want).data());
    before = calls();
    on1.run(typed_in(grads).data(), typed(host).data());
    on1.run_device(in(grads).data(), out(device).data(), stream);
    CHECK(calls().on1 > before.on1);
    CHECK(calls().on0 == before.on0);
    CHECK(host == want);
    CHECK(device == want);
    CHECK(relative_error(want, grads) > 0.1);
    CUcontext popped = nullptr;
    REQUIRE(cu.cuCtxPopCurrent(&popped) == CUDA_SUCCESS);
    CHECK(popped == caller);
    CHECK_FALSE(cuda::sim::context_current());

    // The optimizer's step, state and host path on device 1, against device 0's.
    Optimizer step1 = compile_optimizer_file(mod, options);
    options.device = 0;
    Optimizer step0 = compile_optimizer_file(mod, options);
    const Tensors<float> start = gradients<float>(step1.weights(), rng, test::Spectrum::Gaussian, 0.2);
    Tensors<float> w0 = start, w1 = start;
    before = calls();
    for (int s = 0; s < 2; ++s) {
        const Tensors<float> g = gradients<float>(step1.weights(), rng, s ? test::Spectrum::Decay2 : test::Spectrum::Gaussian);
        step0.step(typed(w0).data(), typed_in(g).data());
        const Calls mid = calls();
        if (s == 0)
            step1.step_device(out(w1).data(), in(g).data(), stream);
        else
            step1.step(typed(w1).data(), typed_in(g).data());
        CHECK(calls().on1 > mid.on1);
        CHECK(calls().on0 == mid.on0);
    }
    CHECK(w1 == w0);
    CHECK(relative_error(w1, start) > 1e-3);
    CHECK(state_of<float>(step1) == state_of<float>(step0));
    const Calls mid = calls();
    step1.zero_state();
    for (const auto& t : state_of<float>(step1))
        for (float v : t) CHECK(v == 0.0f);
    CHECK(calls().on1 > mid.on1);
    CHECK(calls().on0 == mid.on0);
    CHECK_FALSE(cuda::sim::context_current());

    // Bad indices: past the devices (named, with the count), negative, or for the CPU.
    options.device = 2;
    CHECK_THROWS_MATCHES(compile_file(mod, options), BackendError,
                         Catch::Matchers::Message("the CUDA backend failed: there is no CUDA device 2: 2 devices were "
                                                  "found (indices 0 to 1)"));
    options.device = -1;
    CHECK_THROWS_MATCHES(compile_file(mod, options), CompileError,
                         Catch::Matchers::Message("device must be a GPU's index, 0 or more, not -1"));
    options.device = 1;
    options.backend = Backend::Cpu;
    CHECK_THROWS_MATCHES(compile_optimizer_file(mod, options), CompileError,
                         Catch::Matchers::Message("device 1 is a GPU's index, for the cuda and cuda-sim backends; the cpu "
                                                  "backend takes device 0 only"));

    // The C API: modc_compile_options.device.
    modc_compile_options c_options{};
    c_options.backend = MODC_CUDA_SIM;
    c_options.threads = 1;
    c_options.precision = MODC_PRECISION_F32;
    c_options.device = 1;
    char* error = nullptr;
    before = calls();
    modc_dualizer* d = modc_compile_file_with(mod.c_str(), &c_options, &error);
    INFO((error ? error : ""));
    REQUIRE(d != nullptr);
    Tensors<float> from_c = grads;
    REQUIRE(modc_dualize_device(d, in(grads).data(), out(from_c).data(), stream, &error) == 0);
    CHECK(from_c == want);
    CHECK(calls().on1 > before.on1);
    CHECK(calls().on0 == before.on0);
    modc_free(d);
    c_options.device = 3;
    CHECK(modc_compile_file_with(mod.c_str(), &c_options, &error) == nullptr);
    REQUIRE(error != nullptr);
    CHECK_THAT(error, Contains("there is no CUDA device 3: 2 devices were found"));
    modc_free_string(error);

    // The CLI's --device (the compiling commands share its parser): a run, the simulator's
    // device count from MODC_CUDA_SIM_DEVICES, and the refusals, each one line and exit 1.
    const std::string env = "MODC_CACHE_DIR=" + test::quote(MODC_TEST_CACHE_DIR);
    const std::string bench = "bench " + test::quote(mod.string()) + " --runs 1 --warmup 0 --precision f32 ";
    auto run = test::run_modc(bench + "--backend cuda-sim --device 1", env);
    INFO(run.err);
    CHECK(run.status == 0);
    CHECK(test::run_modc(bench + "--backend cuda-sim --device 3", env + " MODC_CUDA_SIM_DEVICES=4").status == 0);
    run = test::run_modc(bench + "--backend cuda-sim --device 2", env);
    CHECK(run.status == 1);
    CHECK(run.out.empty());
    CHECK(run.err == "modc: error: the CUDA backend failed: there is no CUDA device 2: 2 devices were found (indices 0 to 1)\n");
    run = test::run_modc(bench + "--device 1", env);
    CHECK(run.status == 1);
    CHECK_THAT(run.err, Contains("device 1 is a GPU's index, for the cuda and cuda-sim backends; the cpu backend takes device 0 only"));
    run = test::run_modc(bench + "--backend cuda-sim --device -1", env);
    CHECK(run.status == 1);
    CHECK_THAT(run.err, Contains("--device"));
}

#endif
