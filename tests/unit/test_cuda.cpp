// The CUDA backend without a GPU (issue 6):
//   - every kernel of every example compiles with NVRTC for sm_80 and sm_90, without errors
//     and without register spills (ptxas's own report, --ptxas-options=-v);
//   - the emitted CUDA text, compiled for the host (runtime/cuda/sim/host_build.hpp) and run
//     by the program's op list (CBLAS in column-major mode standing in for cuBLAS, with the
//     very parameters cuBLAS would get), gives the CPU backend's updates;
//   - the NVRTC disk cache: hits, two writers at once, corrupted entries;
//   - `modc dualize --backend cuda` on a machine without a GPU says so and exits 1, and the
//     API with Backend::Cuda throws BackendUnavailable with the same reason;
//   - bf16 storage: the kernels, their conversions (from the emitted text), the host runs;
//   - runtime/cuda end to end on the cuda-sim backend's simulated driver (runtime/cuda/sim),
//     through the CLI and through the C++ and C APIs.
#include <catch2/catch.hpp>

#include "cuda_host_build.hpp"
#include "spectra.hpp"
#include "runtime/cuda/sim/tensor_cores.h"
#include "support.hpp"
#include <cblas.h>
#include <lapacke.h>
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iomanip>
#include <iostream>
#include <map>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "compiler/backend/codegen_cuda.hpp"
#include "compiler/analysis/compilation.hpp"
#include "compiler/backend/schedule.hpp"
#include "library/modc.h"
#include "library/modc.hpp"
#include "support/bf16.hpp"
#include "program/cuda_cost.hpp"
#include "runtime/cuda/cache.hpp"
#include "runtime/tensor_io.hpp"
#ifdef MODC_WITH_CUDA
#include "runtime/cuda/gpu.hpp"
#include "runtime/cuda/nvrtc.hpp"
#endif

namespace fs = std::filesystem;
using namespace modc;
using Catch::Matchers::Contains;

namespace {

using modc::test::read;

using modc::test::build_for_host;
using modc::test::HostBuild;
using modc::test::HostKernels;
using modc::test::quote;
using modc::test::run_modc;
using modc::test::TempDir;

// Every map kind, a batched group (two equal Linears), transposed matrices and Conv2D slices.
const char* kKinds = R"(
atom Rows(dout: dim, din: dim) : din -> dout { shape = (dout, din)  norm = rms_to_linf }
atom Signs(dout: dim, din: dim) : din -> dout { shape = (dout, din)  norm = l1_to_linf }
atom MaxC(d: dim) : d -> d { shape = d  norm = l1 }
atom Frob(dout: dim, din: dim) : din -> dout { shape = (dout, din)  norm = frobenius }
atom Spec(dout: dim, din: dim) : din -> dout { shape = (dout, din)  norm = spectral }
atom Vec(d: dim) : d -> d { shape = d  norm = l2 }
network kinds =
    Embed(5, 8) @ Rows(8, 16) @ Signs(16, 16) @ MaxC(16) @ MaxC(16) @ Bias(16) @ Gain(16) @ Vec(16)
  @ Frob(16, 12) @ Spec(12, 20) @ Linear(20, 20) @ Linear(20, 20) @ Linear(20, 6)
  @ AvgPool @ Conv2D(6, 4, 3) @ Conv2D(4, 4, 3)
)";

// A network to test: a file or a text, with parameter overrides.
struct Net {
    std::string name;  // for messages and #line
    std::string text;
    std::map<std::string, std::string> set;
};

Net example(const std::string& file, std::map<std::string, std::string> set = {}) {
    fs::path p = fs::path(MODC_SOURCE_DIR) / "examples" / file;
    return Net{p.string(), read(p), std::move(set)};
}

// GPT at a size the host emulation runs in well under a second; every kind of weight it has.
Net small_gpt() { return example("gpt.mod", {{"vocab", "64"}, {"d", "32"}, {"heads", "2"}, {"L", "2"}}); }

std::vector<Net> shared_cases() {
    std::vector<Net> nets;
    for (const auto& e : fs::directory_iterator(MODC_SHARED_CASES)) {
        auto p = e.path();
        if (p.extension() == ".mod" && p.filename().string().rfind("error", 0) != 0) nets.push_back(Net{p.string(), read(p), {}});
    }
    std::sort(nets.begin(), nets.end(), [](const Net& a, const Net& b) { return a.name < b.name; });
    return nets;
}

// The dual plans of a network file (one per network).
std::vector<DualPlan> dual_plans(const Net& net) {
    ElaborateOptions eo;
    for (const auto& [k, v] : net.set) eo.overrides[k] = *parse_decimal(v);
    auto c = compile_source(net.name, net.text, eo);
    INFO(c->diags.render());
    REQUIRE_FALSE(c->diags.has_errors());
    return c->plans;
}

kp::KernelPlan kernel_plan(const DualPlan& plan, const std::string& schedule, bool gram = true,
                           kp::Precision precision = kp::Precision::F32) {
    for (std::size_t i = 0; i < plan.leaves.size(); ++i) REQUIRE(plan.leaves[i].index == static_cast<int>(i));
    return kp::lower(plan, *kp::find_schedule(schedule), {}, {.gram = gram, .precision = precision, .gram_restart_every = true});
}

const std::vector<std::string> kGpuSchedules{"polar-express", "muon", "you", "cubic"};

// ---- the host emulation -------------------------------------------------------------------

void syrk(bool lower, bool trans, int n, int k, float alpha, const float* a, int lda, float beta, float* c, int ldc) {
    cblas_ssyrk(CblasColMajor, lower ? CblasLower : CblasUpper, trans ? CblasTrans : CblasNoTrans, n, k, alpha, a, lda, beta, c, ldc);
}
void syrk(bool lower, bool trans, int n, int k, double alpha, const double* a, int lda, double beta, double* c, int ldc) {
    cblas_dsyrk(CblasColMajor, lower ? CblasLower : CblasUpper, trans ? CblasTrans : CblasNoTrans, n, k, alpha, a, lda, beta, c, ldc);
}
void symm(bool right, bool lower, int m, int n, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
          float* c, int ldc) {
    cblas_ssymm(CblasColMajor, right ? CblasRight : CblasLeft, lower ? CblasLower : CblasUpper, m, n, alpha, a, lda, b, ldb,
                beta, c, ldc);
}
void symm(bool right, bool lower, int m, int n, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
          double* c, int ldc) {
    cblas_dsymm(CblasColMajor, right ? CblasRight : CblasLeft, lower ? CblasLower : CblasUpper, m, n, alpha, a, lda, b, ldb,
                beta, c, ldc);
}
void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
          float* c, int ldc) {
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb,
                beta, c, ldc);
}
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
          double* c, int ldc) {
    cblas_dgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb,
                beta, c, ldc);
}

// A NaN of a gradient's storage type (bf16 bits for std::uint16_t).
template <class S>
S nan_of() {
    if constexpr (std::is_same_v<S, std::uint16_t>)
        return 0x7fc0;
    else
        return std::numeric_limits<S>::quiet_NaN();
}

// Runs a program's ops on the host, as runtime/cuda runs them on a GPU. Work buffers start as
// NaN, and the triangle a syrk leaves undefined is set to NaN after it: reading anything the
// program did not write shows up in the updates. T is the compute type, S that of the
// gradients and updates (std::uint16_t for bf16).
template <class T, class S = T>
std::size_t run_on_host(const cuda::Program& p, const HostKernels& k, const std::vector<std::vector<S>>& grads,
                        std::vector<std::vector<S>>& updates) {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    std::array<std::vector<std::uint64_t>, cuda::kWorkBuffers> work;
    for (int b = 0; b < cuda::kWorkBuffers; ++b) {
        work[static_cast<std::size_t>(b)].resize(static_cast<std::size_t>(p.bytes[static_cast<std::size_t>(b)] + 7) / 8 + 1);
        // All bits set: NaN in f32, f64 and bf16 alike.
        std::memset(work[static_cast<std::size_t>(b)].data(), 0xff, work[static_cast<std::size_t>(b)].size() * 8);
    }
    updates.assign(grads.size(), {});
    for (std::size_t i = 0; i < grads.size(); ++i) updates[i].assign(grads[i].size(), nan_of<S>());
    auto address = [&](const cuda::Operand& o) -> void* {
        switch (o.buffer) {
            case cuda::Buffer::Grad: return const_cast<S*>(grads.at(static_cast<std::size_t>(o.leaf)).data());
            case cuda::Buffer::Update: return updates.at(static_cast<std::size_t>(o.leaf)).data();
            default: {
                auto& w = work[static_cast<std::size_t>(o.buffer)];
                if (o.offset < 0 || static_cast<std::size_t>(o.offset) >= w.size() * 8)
                    throw std::logic_error("an operand outside its buffer");
                return reinterpret_cast<char*>(w.data()) + o.offset;
            }
        }
    };
    auto t = [&](const cuda::Operand& o) { return static_cast<T*>(address(o)); };
    std::size_t ran = 0;  // ops run, the Converged checks' jumps skipping the rest
    for (std::size_t i = 0; i < p.ops.size(); ++i, ++ran) {
        const auto& op = p.ops[i];
        if (const auto* l = std::get_if<cuda::Launch>(&op.what)) {
            std::vector<void*> args;
            for (const auto& a : l->args) args.push_back(address(a));
            k.launch(*l, args);
            continue;
        }
        if (const auto* c = std::get_if<cuda::Converged>(&op.what)) {
            const auto* flags = static_cast<const std::uint32_t*>(address(c->done));
            if (std::all_of(flags, flags + c->count, [](std::uint32_t f) { return f != 0; })) i = c->resume - 1;
            continue;
        }
        const auto& m = std::get<cuda::Matmul>(op.what);
        // Every matrix a cuBLAS call reads or writes lies inside its buffer.
        auto inside = [&](const cuda::Operand& o, std::int64_t rows, std::int64_t cols, int ld, std::int64_t stride) {
            if (o.buffer == cuda::Buffer::Grad || o.buffer == cuda::Buffer::Update) return;
            const std::int64_t size = cuda::is_bf16(o.buffer) ? 2 : sizeof(T);
            const std::int64_t last = o.offset + size * ((m.batch - 1) * stride + std::int64_t(ld) * (cols - 1) + rows);
            if (last > p.bytes[static_cast<std::size_t>(o.buffer)])
                throw std::logic_error("op " + std::to_string(i) + " reaches past buffer " + cuda::to_string(o.buffer));
        };
        if (m.kind == cuda::Matmul::Kind::Gemm) {
            inside(m.a, m.trans_a ? m.k : m.m, m.trans_a ? m.m : m.k, m.lda, m.stride_a);
            inside(m.b, m.trans_b ? m.n : m.k, m.trans_b ? m.k : m.n, m.ldb, m.stride_b);
            inside(m.c, m.m, m.n, m.ldc, m.stride_c);
        }
        const T alpha = static_cast<T>(m.alpha), beta = static_cast<T>(m.beta);
        switch (m.kind) {
            case cuda::Matmul::Kind::Syrk: {
                syrk(m.lower, m.trans_a, m.n, m.k, alpha, t(m.a), m.lda, beta, t(m.c), m.ldc);
                T* c = t(m.c);  // cuBLAS leaves the other triangle as it was: make it unusable
                for (int col = 0; col < m.n; ++col)
                    for (int row = 0; row < m.n; ++row)
                        if (m.lower ? row < col : row > col) c[row + col * m.ldc] = nan;
                break;
            }
            case cuda::Matmul::Kind::Symm:
                symm(m.right, m.lower, m.m, m.n, alpha, t(m.a), m.lda, t(m.b), m.ldb, beta, t(m.c), m.ldc);
                break;
            case cuda::Matmul::Kind::Gemm:
                if (m.precision != kp::Precision::F32) {  // cublasGemmStridedBatchedEx: f32 C, f32 alpha and beta
                    modc_fake::gemm_ex(m.trans_a, m.trans_b, m.m, m.n, m.k, static_cast<float>(m.alpha), address(m.a), m.lda,
                                       m.stride_a, address(m.b), m.ldb, m.stride_b, static_cast<float>(m.beta), address(m.c),
                                       cuda::holds_bf16(m.c, p.storage), m.ldc, m.stride_c, m.batch,
                                       m.precision == kp::Precision::BF16 ? modc_fake::Inputs::BF16 : modc_fake::Inputs::TF32);
                    break;
                }
                for (int b = 0; b < m.batch; ++b)
                    gemm(m.trans_a, m.trans_b, m.m, m.n, m.k, alpha, t(m.a) + b * m.stride_a, m.lda, t(m.b) + b * m.stride_b,
                         m.ldb, beta, t(m.c) + b * m.stride_c, m.ldc);
                break;
        }
    }
    return ran;
}

template <class T>
std::vector<std::vector<T>> random_grads(const std::vector<WeightInfo>& weights, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal;
    std::vector<std::vector<T>> grads;
    for (const auto& w : weights) {
        std::vector<T> g(static_cast<std::size_t>(w.elements()));
        for (auto& v : g) v = static_cast<T>(normal(rng));
        grads.push_back(std::move(g));
    }
    return grads;
}

double norm(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s);
}

using modc::test::give_spectrum;
using modc::test::Spectrum;

// One comparison of the emitted CUDA, run on the host, with the CPU backend.
struct HostCase {
    Net net;
    std::string schedule = "polar-express";
    cuda::MatmulMode mode = cuda::MatmulMode::Auto;
    bool f64 = false;
    double tolerance = 0;  // relative Frobenius error of each weight's update
    unsigned block = 256, max_grid = 1024;  // launches (the kernels are right for any)
    bool bf16 = false;                      // gradients and updates in bf16 (f32 compute)
    double magnitude = 0;                   // gradients scaled to about this largest entry (0: as drawn)
    Spectrum spectrum = Spectrum::Gaussian; // singular values of each matrix gradient
    kp::Precision precision = kp::Precision::F32;  // of the GEMMs: tf32 and bf16 run every spectrum
    std::int64_t max_fused_norm = cuda::CudaOptions{}.max_fused_norm;  // 0: every norm a grid-wide reduction
};

// Scales each gradient by a power of two (exact) so that its largest entry is about `magnitude`,
// below the largest finite float.
template <class T>
void scale_to(std::vector<std::vector<T>>& grads, double magnitude) {
    if (magnitude == 0) return;
    for (auto& g : grads) {
        double largest = 0;
        for (T v : g) largest = std::max(largest, std::fabs(static_cast<double>(v)));
        if (largest == 0) continue;
        double f = std::ldexp(1.0, std::ilogb(magnitude) - std::ilogb(largest));
        if (largest * f >= 3.4e38 && std::is_same_v<T, float>) f /= 2;
        for (T& v : g) v = static_cast<T>(static_cast<double>(v) * f);
    }
}

// bf16 relative precision: 8 significant bits, so rounding moves a value by at most 2^-9 of it.
const double kBf16 = std::ldexp(1.0, -8);

// Gram Newton-Schulz amplifies rounding about 100x (kernel_plan.hpp, Group::gram): two f32 runs
// of it that sum in different orders agree to about 1e-4, not 1e-6. In f64 the agreement stays
// at 1e-11, which shows the arithmetic is the same.
const double kGramF32 = 1e-3;

template <class T>
void compare(const HostCase& c, const cuda::Program& program, const HostKernels& kernels, bool zero_first,
             const std::set<int>& gram_leaves) {
    CompileOptions options;
    options.schedule = c.schedule;
    options.set = c.net.set;
    options.dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
    Dualizer cpu = compile_source_text(c.net.name, c.net.text, options);
    REQUIRE(cpu.weights().size() == program.leaf_count);

    auto grads = random_grads<T>(cpu.weights(), 7);
    std::mt19937 noise(11);
    for (std::size_t i = 0; i < grads.size(); ++i) {
        const auto& shape = cpu.weights()[i].shape;
        if (shape.size() >= 2) give_spectrum(grads[i], shape[0], cpu.weights()[i].elements() / shape[0], c.spectrum, noise);
    }
    scale_to(grads, c.magnitude);
    if (zero_first)  // zero gradients map to zero updates, never NaN
        for (std::size_t i = 0; i < grads.size(); i += 2) std::fill(grads[i].begin(), grads[i].end(), T(0));
    std::vector<std::vector<T>> expected(grads.size()), got;
    std::vector<const T*> in;
    std::vector<T*> out;
    for (std::size_t i = 0; i < grads.size(); ++i) {
        expected[i].assign(grads[i].size(), T(0));
        in.push_back(grads[i].data());
        out.push_back(expected[i].data());
    }
    cpu.run(in.data(), out.data());
    std::size_t ran = run_on_host<T>(program, kernels, grads, got);
    // The cubic schedule's 100 steps are there for the worst case: the Converged checks stop
    // the run a few steps after every matrix has converged (about 20 steps here).
    bool checks = std::any_of(program.ops.begin(), program.ops.end(),
                              [](const cuda::Op& op) { return std::holds_alternative<cuda::Converged>(op.what); });
    CHECK(checks == (c.schedule == "cubic"));
    // Not gradients of 1e-38: normalised by ||G||_F + 1e-7 (Muon's eps) they give an X of about
    // 1e-31, which the cubic steps grow by 1.5 at most: all 100 run (on both backends alike).
    const bool tiny = c.magnitude != 0 && c.magnitude < 1e-30;
    if (checks && !tiny) CHECK(ran < program.ops.size() / 2);

    for (std::size_t i = 0; i < grads.size(); ++i) {
        std::vector<double> diff(grads[i].size()), ref(grads[i].size());
        bool finite = true;
        for (std::size_t e = 0; e < grads[i].size(); ++e) {
            finite &= std::isfinite(static_cast<double>(got[i][e]));
            diff[e] = static_cast<double>(got[i][e]) - static_cast<double>(expected[i][e]);
            ref[e] = static_cast<double>(expected[i][e]);
        }
        // Scaled, so that updates of 1e-300 do not count as zero.
        double unit = 0;
        for (double r : ref) unit = std::max(unit, std::fabs(r));
        if (unit > 0)
            for (std::size_t e = 0; e < ref.size(); ++e) ref[e] /= unit, diff[e] /= unit;
        double error = norm(ref) > 0 ? norm(diff) / norm(ref) : norm(diff);
        INFO(c.net.name << ", " << c.schedule << (c.f64 ? ", f64" : ", f32") << (zero_first ? ", zero gradients" : "")
                        << (c.magnitude ? ", gradients of " + std::to_string(c.magnitude) : std::string()) << ": weight "
                        << cpu.weights()[i].path << ", relative error " << error);
        CHECK(finite);
        // A gradient that is not zero gets an update that is not zero, whatever its scale.
        if (!(zero_first && i % 2 == 0)) CHECK(unit > 0);
        bool gram = gram_leaves.count(static_cast<int>(i)) > 0;
        CHECK(error <= (gram && !c.f64 ? std::max(c.tolerance, kGramF32) : c.tolerance));
    }
}

// bf16 storage: the reference is the CPU backend in f32 on the same gradients widened; the
// updates differ from it by their rounding to bf16 (and by f32 rounding, much smaller).
void compare_bf16(const HostCase& c, const cuda::Program& program, const HostKernels& kernels, bool zero_first,
                  const std::set<int>& gram_leaves) {
    CompileOptions options;
    options.schedule = c.schedule;
    options.set = c.net.set;
    Dualizer cpu = compile_source_text(c.net.name, c.net.text, options);
    REQUIRE(cpu.weights().size() == program.leaf_count);
    auto wide = random_grads<float>(cpu.weights(), 7);
    scale_to(wide, c.magnitude);
    if (zero_first)
        for (std::size_t i = 0; i < wide.size(); i += 2) std::fill(wide[i].begin(), wide[i].end(), 0.0f);
    std::vector<std::vector<std::uint16_t>> grads(wide.size()), got;
    std::vector<std::vector<float>> expected(wide.size());
    std::vector<const float*> in;
    std::vector<float*> out;
    for (std::size_t i = 0; i < wide.size(); ++i) {
        for (float& v : wide[i]) {
            grads[i].push_back(f32_to_bf16(v));
            v = bf16_to_f32(grads[i].back());  // the CPU sees exactly the bf16 gradient
        }
        expected[i].assign(wide[i].size(), 0.0f);
        in.push_back(wide[i].data());
        out.push_back(expected[i].data());
    }
    cpu.run(in.data(), out.data());
    run_on_host<float, std::uint16_t>(program, kernels, grads, got);
    for (std::size_t i = 0; i < grads.size(); ++i) {
        std::vector<double> diff(grads[i].size()), ref(grads[i].size());
        bool finite = true, each_rounded = true;
        double largest = 0;
        for (float e : expected[i]) largest = std::max(largest, std::fabs(static_cast<double>(e)));
        const double f32_rounding = gram_leaves.count(static_cast<int>(i)) ? kGramF32 : 1e-4;
        for (std::size_t e = 0; e < grads[i].size(); ++e) {
            const double g = bf16_to_f32(got[i][e]), x = expected[i][e];
            finite &= std::isfinite(g);
            diff[e] = g - x;
            ref[e] = x;
            each_rounded &= std::fabs(g - x) <= kBf16 * std::fabs(x) + f32_rounding * largest;
        }
        double error = norm(ref) > 0 ? norm(diff) / norm(ref) : norm(diff);
        INFO(c.net.name << ", " << c.schedule << ", bf16" << (zero_first ? ", zero gradients" : "") << ": weight "
                        << cpu.weights()[i].path << ", relative error " << error);
        CHECK(finite);
        CHECK(each_rounded);
        CHECK(error <= c.tolerance);
    }
}

const Spectrum kSpectra[] = {Spectrum::Gaussian, Spectrum::Decay1, Spectrum::Decay2, Spectrum::LowRankNoise,
                             Spectrum::RankDeficient};
const char* to_string(Spectrum s) {
    switch (s) {
        case Spectrum::Gaussian: return "Gaussian";
        case Spectrum::Decay1: return "1/i";
        case Spectrum::Decay2: return "1/i^2";
        case Spectrum::LowRankNoise: return "rank 3 + noise";
        case Spectrum::RankDeficient: return "rank-deficient";
    }
    return "?";
}

// Relative Frobenius error of `got` against `ref`, both scaled by ref's largest entry first.
double relative_error(const std::vector<double>& got, const std::vector<double>& ref) {
    double unit = 0;
    for (double r : ref) unit = std::max(unit, std::fabs(r));
    if (unit == 0) unit = 1;
    double d = 0, n = 0;
    for (std::size_t e = 0; e < ref.size(); ++e) {
        d += (got[e] - ref[e]) / unit * ((got[e] - ref[e]) / unit);
        n += ref[e] / unit * (ref[e] / unit);
    }
    return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

// A tf32 or bf16 program run on the host (tensor_cores.h rounding the GEMMs' inputs as the GPU
// does) against the CPU backend in f64 with the same schedule: what the precision costs, apart
// from the schedule's own error. Returns each weight's relative error.
std::vector<double> compare_precision(const HostCase& c, const cuda::Program& program, const HostKernels& kernels,
                                      Spectrum spectrum, bool check = true) {
    CompileOptions options;
    options.schedule = c.schedule;
    options.set = c.net.set;
    options.dtype = DType::F64;
    Dualizer cpu = compile_source_text(c.net.name, c.net.text, options);
    REQUIRE(cpu.weights().size() == program.leaf_count);
    auto grads = random_grads<float>(cpu.weights(), 7);
    std::mt19937 noise(11);
    for (std::size_t i = 0; i < grads.size(); ++i) {
        const auto& shape = cpu.weights()[i].shape;
        if (shape.size() >= 2) give_spectrum(grads[i], shape[0], cpu.weights()[i].elements() / shape[0], spectrum, noise);
    }
    std::vector<std::vector<double>> wide(grads.size()), expected(grads.size());
    std::vector<const double*> in;
    std::vector<double*> out;
    for (std::size_t i = 0; i < grads.size(); ++i) {
        wide[i].assign(grads[i].begin(), grads[i].end());
        expected[i].assign(grads[i].size(), 0.0);
        in.push_back(wide[i].data());
        out.push_back(expected[i].data());
    }
    cpu.run(in.data(), out.data());
    std::vector<std::vector<float>> got;
    run_on_host<float>(program, kernels, grads, got);
    std::vector<double> errors;
    for (std::size_t i = 0; i < grads.size(); ++i) {
        std::vector<double> g(got[i].begin(), got[i].end());
        bool finite = std::all_of(g.begin(), g.end(), [](double v) { return std::isfinite(v); });
        double error = relative_error(g, expected[i]);
        errors.push_back(error);
        if (!check) continue;
        INFO(c.net.name << ", " << c.schedule << ", " << kp::to_string(c.precision) << ", " << to_string(spectrum)
                        << " gradients: weight " << cpu.weights()[i].path << ", relative error " << error);
        CHECK(finite);
        // Where the gradient has (nearly) zero singular values, its polar factor there is made of
        // rounding noise, at any precision that rounds: bounded (no divergence), not close.
        const bool deficient = spectrum == Spectrum::LowRankNoise || spectrum == Spectrum::RankDeficient;
        CHECK(error <= (deficient ? 1.5 : c.tolerance));
    }
    return errors;
}

// Worst relative errors against f64 allowed for tensor-core precisions (measured: docs/cuda.md).
const std::map<std::string, double> kPrecisionTolerance{{"tf32", 0.04}, {"bf16", 0.3}, {"bf16 cubic", 0.4}};

// Generates every case's program, compiles them for the host two at a time, and compares.
void check_on_host(const std::vector<HostCase>& cases) {
    std::vector<cuda::Program> programs;
    std::vector<std::set<int>> gram_leaves;  // by case: the weights in Gram groups
    for (const auto& c : cases) {
        auto plans = dual_plans(c.net);
        REQUIRE(plans.size() == 1);
        cuda::CudaOptions co;
        co.type = c.f64 ? ElementType::F64 : ElementType::F32;
        co.storage = c.bf16 ? cuda::Storage::BF16 : cuda::Storage::Compute;
        co.matmul = c.mode;
        co.block = c.block;
        co.max_grid = co.max_reduce_grid = c.max_grid;
        co.max_fused_norm = c.max_fused_norm;
        kp::KernelPlan plan = kernel_plan(plans.front(), c.schedule, true, c.precision);
        gram_leaves.emplace_back();
        for (const auto& g : plan.groups)
            for (const auto& m : g.members)
                if (g.gram) gram_leaves.back().insert(m.leaf);
        programs.push_back(cuda::codegen_cuda(plan, co));
    }
    std::vector<std::future<std::unique_ptr<HostBuild>>> builds;
    std::size_t next = 0;
    auto start_one = [&] {
        if (next < programs.size()) {
            const cuda::Program& program = programs[next++];
            builds.push_back(std::async(std::launch::async, [&program] { return build_for_host(program.source, program.kernels); }));
        }
    };
    start_one();
    for (std::size_t i = 0; i < cases.size(); ++i) {
        start_one();  // the next build runs while this case is compared
        auto build = builds[i].get();
        HostKernels kernels(*build, programs[i].kernels);
        const auto& gram = gram_leaves[i];
        if (cases[i].precision != kp::Precision::F32) {
            for (Spectrum s : kSpectra) compare_precision(cases[i], programs[i], kernels, s);
        } else if (cases[i].bf16) {
            compare_bf16(cases[i], programs[i], kernels, false, gram);
            compare_bf16(cases[i], programs[i], kernels, true, gram);
        } else if (cases[i].f64) {
            compare<double>(cases[i], programs[i], kernels, false, gram);
        } else {
            compare<float>(cases[i], programs[i], kernels, false, gram);
            compare<float>(cases[i], programs[i], kernels, true, gram);
        }
    }
}

}  // namespace

TEST_CASE("the CUDA source has a kernel per step, constants as literals and #line directives", "[cuda]") {
    Net net = example("mlp.mod");
    auto plans = dual_plans(net);
    cuda::Program p = cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express"));
    CHECK_THAT(p.source, Contains("extern \"C\" __global__ void __launch_bounds__(256) g0_normalize("));
    CHECK_THAT(p.source, Contains("#line 31 \"" + net.name + "\""));
    CHECK_THAT(p.source, Contains("i < 200704"));  // 256 x 784, as a literal
    CHECK_THAT(p.source, Contains("cublasSsyrk(lower, T, n=256, k=784"));
    CHECK(p.source.find("#include") == std::string::npos);
    // Every kernel is launched, and every launch names a kernel of the source.
    std::set<std::string> launched;
    for (const auto& op : p.ops)
        if (const auto* l = std::get_if<cuda::Launch>(&op.what)) launched.insert(l->kernel);
    CHECK(launched == std::set<std::string>(p.kernels.begin(), p.kernels.end()));
    // Deterministic.
    CHECK(cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express")).source == p.source);
    // svd has no CUDA form.
    CHECK_THROWS_AS(cuda::codegen_cuda(kernel_plan(plans.front(), "svd")), cuda::Unsupported);
}

// Issue 14, item 4: GPT-2 small's program in every precision. Every sum of squares over many
// blocks ends in one atomic per block (modc_block_sum first); no kernel transposes X (a tall
// matrix's X is its gradient's bytes, which the products read column-major); there is no Y = a X
// kernel (a is on P's diagonal) but in tf32's direct groups (fold_identity); a polynomial after
// gemms reads A as it lies; the last product of a fixed schedule writes each update (no finish
// kernel; tf32's direct groups keep theirs).
TEST_CASE("cuda kernels: block sums, no transposed copies, a X in P, products into the updates", "[cuda]") {
    auto plans = dual_plans(example("gpt.mod"));
    for (auto precision : {kp::Precision::F32, kp::Precision::TF32, kp::Precision::BF16}) {
        INFO(kp::to_string(precision));
        cuda::Program p = cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express", true, precision));
        // Each kernel's text, by name.
        std::map<std::string, std::string> text;
        for (const auto& k : p.kernels) {
            const auto at = p.source.find(" " + k + "(");
            REQUIRE(at != std::string::npos);
            text[k] = p.source.substr(at, p.source.find("\n}\n", at) - at);
        }
        int sums = 0, axpys = 0;
        for (const auto& [name, body] : text) {
            INFO(name);
            axpys += name.find("_axpy") != std::string::npos;
            if (precision != kp::Precision::TF32) CHECK(name.find("_axpy") == std::string::npos);
            if (precision != kp::Precision::TF32) CHECK(name.find("_finish") == std::string::npos);
            if (name.size() > 6 && name.substr(name.size() - 6) == "_sumsq") {
                ++sums;
                CHECK_THAT(body, Contains("modc_block_sum(acc, 1, part, warps);"));
                CHECK_THAT(body, Contains("if (threadIdx.x == 0) modc_ssq_flush("));
            }
            CHECK(body.find("col * ") == std::string::npos);  // no transposed index
        }
        CHECK(sums >= 4);  // one per orthogonalising group (gpt.mod's are all over 8 Ki elements)
        CHECK((axpys > 0) == (precision == kp::Precision::TF32));
        // The head (50304 x 768): X = G^T is G's bytes, so A = X X^T reads them untransposed.
        CHECK_THAT(p.source, Contains(precision == kp::Precision::F32 ? "cublasSsyrk(lower, N, n=768, k=50304"
                                                                      : "(N, T, m=768, n=768, k=50304"));
        CHECK_THAT(p.source, Contains("u = e;"));
        CHECK_THAT(p.source, Contains("// update of head = scale Q X"));
        // The embedding: the closed-form map writes its update, no GEMM in between.
        CHECK_THAT(p.source, Contains("g0_m0_map"));
    }
}

// Barriers in the simulator: a block's stores before __syncthreads are seen by every thread of
// the block after it, though the threads run one after the other (cuda_host.h replays the code
// before each barrier). Run in order without that, thread t would read thread t + 1's value
// before it was stored. Also modc_block_sum itself, from a generated program's source.
TEST_CASE("the simulator keeps __syncthreads: stores before a barrier are seen after it", "[cuda][sim]") {
    auto plans = dual_plans(example("mlp.mod", {{"width", "16"}}));
    cuda::Program p = cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express"));
    const std::string kernels = R"(
extern "C" __global__ void __launch_bounds__(256) rotate(const int* __restrict__ in, int* __restrict__ out) {
    __shared__ int stage[256];
    const int at = blockIdx.x * blockDim.x + threadIdx.x;
    stage[threadIdx.x] = 2 * in[at];
    __syncthreads();
    out[at] = stage[(threadIdx.x + 1) % blockDim.x];
}
extern "C" __global__ void __launch_bounds__(256) block_sums(const double* __restrict__ in, double* __restrict__ out) {
    __shared__ double part[2 * 256], warps[2 * 8];
    const int at = blockIdx.x * blockDim.x + threadIdx.x;
    double acc[2] = {in[at], -2.0 * in[at]};
    modc_block_sum(acc, 2, part, warps);
    out[2 * at] = acc[0];
    out[2 * at + 1] = acc[1];
}
)";
    auto build = build_for_host(p.source + kernels, {"rotate", "block_sums"});
    HostKernels k(*build, {"rotate", "block_sums"});
    const unsigned blocks = 3, threads = 256, n = blocks * threads;
    std::vector<int> in(n), out(n, -1);
    for (unsigned i = 0; i < n; ++i) in[i] = static_cast<int>(i * 7 + 1);
    const int* in_ptr = in.data();
    int* out_ptr = out.data();
    k.launch_params("rotate", {blocks, 1, 1}, {threads, 1, 1}, {&in_ptr, &out_ptr});
    std::size_t wrong = 0;
    for (unsigned b = 0; b < blocks; ++b)
        for (unsigned t = 0; t < threads; ++t) wrong += out[b * threads + t] != 2 * in[b * threads + (t + 1) % threads];
    CHECK(wrong == 0);
    // Integers, so every order of summing gives the exact block total.
    std::vector<double> values(n), sums(2 * n, 0.0);
    for (unsigned i = 0; i < n; ++i) values[i] = static_cast<double>((i * 37) % 101) - 50.0;
    const double* v_ptr = values.data();
    double* s_ptr = sums.data();
    k.launch_params("block_sums", {blocks, 1, 1}, {threads, 1, 1}, {&v_ptr, &s_ptr});
    wrong = 0;
    for (unsigned b = 0; b < blocks; ++b) {
        double total = 0;
        for (unsigned t = 0; t < threads; ++t) total += values[b * threads + t];
        for (unsigned t = 0; t < threads; ++t)
            wrong += sums[2 * (b * threads + t)] != total || sums[2 * (b * threads + t) + 1] != -2.0 * total;
    }
    CHECK(wrong == 0);
}

// f32 results differ from the CPU's by rounding (sums in another order, amplified a little by
// the first Newton-Schulz steps); f64 ones show that the arithmetic is the same.
TEST_CASE("the emitted CUDA, compiled for the host, gives the CPU backend's updates", "[cuda][host]") {
    using M = cuda::MatmulMode;
    const Net kinds{"kinds.mod", kKinds, {}};
    const double f32 = 3e-5, f64 = 1e-11;
    // The test matrices are small: each normalised by one block, unless told otherwise.
    auto grid_wide_norms = [](HostCase c) {
        c.max_fused_norm = 0;
        return c;
    };
    check_on_host({
        // the norms as grid-wide reductions (block sums, one atomic per block), every map kind
        grid_wide_norms({kinds, "polar-express", M::Symmetric, true, f64}),
        grid_wide_norms({kinds, "cubic", M::Batched, false, f32, 64, 3}),
        // every map kind; the schedules, with symmetric (syrk, symm) and batched (gemm) matmuls
        {kinds, "polar-express", M::Auto, false, f32},
        {kinds, "polar-express", M::Auto, true, f64},
        {kinds, "polar-express", M::Batched, true, f64},  // Gram groups with gemm
        {kinds, "muon", M::Symmetric, true, f64},
        {kinds, "you", M::Batched, true, f64},    // Gram restarted after two steps, with gemm
        {kinds, "you", M::Symmetric, true, f64},  // and with syrk and symm
        {kinds, "cubic", M::Symmetric, true, f64},
        {kinds, "cubic", M::Batched, false, f32},
        // the examples, gpt at a small size
        {example("mlp.mod", {{"width", "64"}}), "polar-express", M::Auto, false, f32},
        {example("cnn.mod", {{"width", "8"}}), "polar-express", M::Auto, false, f32},
        {small_gpt(), "polar-express", M::Auto, false, f32},
        {small_gpt(), "muon", M::Auto, true, f64},
        // tiny launches: each thread loops over many elements
        {kinds, "cubic", M::Auto, true, f64, 32, 3},
        {example("cnn.mod", {{"width", "8"}}), "you", M::Auto, false, f32, 64, 2},
        // gradients and updates in bf16, computed in f32
        {kinds, "polar-express", M::Symmetric, false, kBf16, 256, 1024, true},
        {kinds, "cubic", M::Batched, false, kBf16, 32, 3, true},
        {example("cnn.mod", {{"width", "8"}}), "muon", M::Auto, false, kBf16, 256, 1024, true},
        {small_gpt(), "polar-express", M::Auto, false, kBf16, 256, 1024, true},
    });
}

// Issue 15: sums of squares of f64 gradients of 1e+160 overflowed (all-zero updates), of f32
// ones of 1e+20 too, and tiny ones underflowed. The CPU backend is checked against the exact
// maps at these scales (test_cpu.cpp); the CUDA kernels must give its updates, not zero.
TEST_CASE("the emitted CUDA, on gradients near the ends of the range, gives the CPU backend's updates", "[cuda][host]") {
    using M = cuda::MatmulMode;
    const Net kinds{"kinds.mod", kKinds, {}};
    const double f32 = 3e-5, f64 = 1e-11;
    auto at = [](HostCase c, double magnitude) {
        c.magnitude = magnitude;
        return c;
    };
    check_on_host({
        at({kinds, "polar-express", M::Auto, false, f32}, 3e38),
        at({kinds, "polar-express", M::Auto, false, f32}, 1e-38),
        at({kinds, "polar-express", M::Auto, true, f64}, 1e300),
        at({kinds, "polar-express", M::Auto, true, f64}, 1e-300),
        at({kinds, "cubic", M::Batched, true, f64}, 1e300),
        at({kinds, "cubic", M::Symmetric, false, f32}, 1e-38),
        at({kinds, "muon", M::Symmetric, true, f64}, 1e-300),
        at({kinds, "you", M::Batched, false, f32}, 3e38),
        at({kinds, "polar-express", M::Symmetric, false, kBf16, 256, 1024, true}, 3e38),
        at({kinds, "polar-express", M::Symmetric, false, kBf16, 256, 1024, true}, 1e-38),
    });
}

// Issue 14: the Gram groups of the CUDA program did not make A symmetric after A = P P A, so
// A A (syrk, or a transposed gemm: A A^T) drifted further every step; on gradients whose
// singular values fall off as 1/i the updates were 1e-1 away from the CPU backend's, as 1/i^2
// garbage. Gaussian gradients did not show it. Every spectrum, both matmul modes, f64 (the
// same arithmetic: close agreement) and f32.
TEST_CASE("the emitted CUDA, on ill-conditioned gradients, gives the CPU backend's updates", "[cuda][host]") {
    using M = cuda::MatmulMode;
    const Net kinds{"kinds.mod", kKinds, {}};
    // f32: Gram Newton-Schulz's rounding, amplified by the conditioning, moves two f32 runs that sum
    // in different orders up to 7e-3 apart here (kGramF32 is for Gaussian gradients); the f64
    // runs show that the arithmetic is the same (before the fix they were 1e-1 and more apart).
    const double f32 = 1e-2, f64 = 1e-9;
    std::vector<HostCase> cases;
    for (Spectrum s : {Spectrum::Decay1, Spectrum::Decay2, Spectrum::LowRankNoise, Spectrum::RankDeficient}) {
        for (HostCase c : std::vector<HostCase>{{kinds, "polar-express", M::Symmetric, true, f64},
                                                {kinds, "polar-express", M::Batched, true, f64},
                                                {kinds, "you", M::Auto, true, f64},
                                                {small_gpt(), "polar-express", M::Auto, true, f64},
                                                {kinds, "polar-express", M::Auto, false, f32}}) {
            c.spectrum = s;
            cases.push_back(c);
        }
    }
    check_on_host(cases);
}

// Issue 14: tf32 and bf16 GEMMs on tensor cores. Each case runs on every spectrum; the
// tolerance is against f64 (compare_precision). Measured worst errors, with their margins, are in
// docs/cuda.md ("Precision").
TEST_CASE("cuda precision: tf32 and bf16 GEMMs, run on the host as the GPU rounds them, against f64", "[cuda][host][precision]") {
    using M = cuda::MatmulMode;
    using P = kp::Precision;
    const Net kinds{"kinds.mod", kKinds, {}};
    auto with = [](HostCase c, P p) {
        c.precision = p;
        return c;
    };
    check_on_host({
        with({kinds, "polar-express", M::Auto, false, kPrecisionTolerance.at("tf32")}, P::TF32),
        // Y = a X apart from P in tf32 (fold_identity): folded, mlp's 64 x 784 input with 1/i^2
        // (sigma_min 2^-12 of the largest) ended 0.07 from f64.
        with({example("mlp.mod", {{"width", "64"}}), "cubic", M::Auto, false, kPrecisionTolerance.at("tf32")}, P::TF32),
        with({kinds, "polar-express", M::Auto, false, kPrecisionTolerance.at("bf16")}, P::BF16),
        with({kinds, "muon", M::Auto, false, kPrecisionTolerance.at("bf16")}, P::BF16),
        with({kinds, "you", M::Auto, false, kPrecisionTolerance.at("bf16")}, P::BF16),  // Gram with a restart
        with({kinds, "cubic", M::Auto, false, kPrecisionTolerance.at("bf16 cubic")}, P::BF16),
        with({small_gpt(), "polar-express", M::Auto, false, kPrecisionTolerance.at("bf16")}, P::BF16),
    });
}

TEST_CASE("cuda precision: bf16 and tf32 programs, GemmEx everywhere, the listing says each op's precision", "[cuda][precision]") {
    const DualPlan plan = dual_plans(example("gpt.mod")).front();
    for (auto precision : {kp::Precision::TF32, kp::Precision::BF16}) {
        cuda::Program p = cuda::codegen_cuda(kernel_plan(plan, "polar-express", true, precision));
        CHECK(p.precision == precision);
        int matmuls = 0;
        for (const auto& op : p.ops)
            if (const auto* m = std::get_if<cuda::Matmul>(&op.what)) {
                ++matmuls;
                CHECK(m->kind == cuda::Matmul::Kind::Gemm);  // no syrk or symm: no tensor-core forms
                CHECK(m->precision == precision);
                if (precision == kp::Precision::BF16) CHECK(m->beta == 0);  // no Y += B X
                CHECK(cuda::is_bf16(m->a.buffer) == (precision == kp::Precision::BF16));
                CHECK(cuda::is_bf16(m->b.buffer) == (precision == kp::Precision::BF16));
                CHECK_THAT(cuda::describe(op, p.type), Contains("cublasGemmStridedBatchedEx("));
                CHECK_THAT(cuda::describe(op, p.type), Contains(precision == kp::Precision::BF16 ? "CUBLAS_COMPUTE_32F)"
                                                                                                 : "CUBLAS_COMPUTE_32F_FAST_TF32)"));
            }
        CHECK(matmuls > 0);
        // bf16: no f32 copies of A, A A or P at all; X in f32 only for the last step's result.
        const bool bf16 = precision == kp::Precision::BF16;
        for (auto b : {cuda::Buffer::A, cuda::Buffer::AA, cuda::Buffer::B, cuda::Buffer::Q, cuda::Buffer::X})
            CHECK((p.bytes[static_cast<std::size_t>(b)] == 0) == bf16);
        CHECK((p.bytes[static_cast<std::size_t>(cuda::Buffer::Xh)] > 0) == bf16);
        if (bf16) CHECK_THAT(p.source, Contains("out[e] = modc_f32_to_bf16("));
    }
    // f64 has no tensor-core precision in modc.
    cuda::CudaOptions f64;
    f64.type = ElementType::F64;
    CHECK_THROWS_AS(cuda::codegen_cuda(kernel_plan(plan, "polar-express", true, kp::Precision::BF16), f64), cuda::Unsupported);
}

// Issue 14's done-when: GPT-2 small's dualizer in bf16 is modelled at most 3 ms on an H100.
TEST_CASE("cuda cost listing: every op, totals that add up, GPT-2 small in bf16 within 3 ms", "[cuda][cost]") {
    auto run = run_modc("emit " + quote(std::string(MODC_SOURCE_DIR) + "/examples/gpt.mod") +
                        " --emit cost --json --precision bf16");
    INFO(run.err);
    REQUIRE(run.status == 0);
    const auto j = nlohmann::json::parse(run.out);
    const DualPlan plan = dual_plans(example("gpt.mod")).front();
    const cuda::Program p = cuda::codegen_cuda(kernel_plan(plan, "polar-express", true, kp::Precision::BF16));
    REQUIRE(j["ops"].size() == p.ops.size());
    double flops = 0, us = 0, read = 0, written = 0;
    std::size_t kernels = 0;
    for (std::size_t i = 0; i < p.ops.size(); ++i) {
        const auto& op = j["ops"][i];
        CHECK(op["op"] == i);
        if (std::holds_alternative<cuda::Launch>(p.ops[i].what))
            CHECK(op["kind"] == "kernel");
        else
            CHECK((op["kind"] == "gemm" || op["kind"] == "batched gemm"));
        kernels += op["kind"] == "kernel";
        flops += op["flops"].get<double>();
        us += op["modelled_us"].get<double>();
        read += op["bytes_read"].get<double>();
        written += op["bytes_written"].get<double>();
        CHECK(op["modelled_us"].get<double>() >= 0);
    }
    CHECK(j["total"]["kernels"] == kernels);
    CHECK(j["total"]["flops"].get<double>() == Approx(flops));
    CHECK(j["total"]["bytes_read"].get<double>() == Approx(read));
    CHECK(j["total"]["bytes_written"].get<double>() == Approx(written));
    CHECK(j["total"]["modelled_ms"].get<double>() == Approx(us / 1e3));
    WARN("GPT-2 small, bf16: modelled " << j["total"]["modelled_ms"].get<double>() << " ms on an H100");
    CHECK(j["total"]["modelled_ms"].get<double>() <= 3.0);
    // A gemm's flops are 2 m n k per matrix.
    for (const auto& op : p.ops)
        if (const auto* m = std::get_if<cuda::Matmul>(&op.what)) {
            auto c = cuda::cost(cuda::Program{.type = ElementType::F32, .ops = {op}});
            CHECK(c.flops == 2.0 * m->m * m->n * m->k * m->batch);
        }
}

// What tf32 and bf16 cost against f64, printed (not a check): `unit_tests "[.precision_table]"`.
TEST_CASE("the table of tf32 and bf16 errors", "[.precision_table]") {
    const Net kinds = std::getenv("MODC_TABLE_GPT") ? small_gpt() : Net{"kinds.mod", kKinds, {}};
    for (const char* schedule : {"polar-express", "muon", "you", "cubic"})
        for (auto p : {kp::Precision::TF32, kp::Precision::BF16}) {
            HostCase c{kinds, schedule};
            c.precision = p;
            auto plan = kernel_plan(dual_plans(c.net).front(), schedule, !std::getenv("MODC_TABLE_NO_GRAM"), p);
            cuda::Program program = cuda::codegen_cuda(plan);
            auto build = build_for_host(program.source);
            HostKernels kernels(*build, program.kernels);
            for (Spectrum s : kSpectra) {
                auto errors = compare_precision(c, program, kernels, s, false);
                std::ostringstream line;
                line << schedule << " " << kp::to_string(p) << " " << to_string(s) << ":";
                for (double e : errors) line << " " << std::setprecision(2) << e;
                std::cout << line.str() << "\n";  // one line a row, unwrapped
            }
        }
}

// The accuracy of tf32 and bf16 on GPT-2 small's matrix shapes (768 x 768 directly, 3072 x 768 and
// 768 x 3072 by Gram Newton-Schulz), for bench/precision_accuracy.py, which sets
// MODC_ACCURACY_OUT, runs PyTorch's bf16 Muon iteration on the same gradients and prints the
// table of docs/cuda.md. Writes OUT/<spectrum>/*.npy (the gradients) and OUT/modc.json.
TEST_CASE("accuracy of tensor-core precisions on GPT-2 shapes", "[.accuracy]") {
    const char* out = std::getenv("MODC_ACCURACY_OUT");
    REQUIRE(out != nullptr);
    const Net net{"gpt2_shapes.mod", "network gpt2_shapes = Linear(768, 3072) @ Linear(3072, 768) @ Linear(768, 768)\n", {}};
    const DualPlan plan = dual_plans(net).front();
    nlohmann::json results = nlohmann::json::array();
    for (Spectrum s : {Spectrum::Gaussian, Spectrum::Decay1, Spectrum::Decay2}) {
        std::string name = s == Spectrum::Gaussian ? "gaussian" : s == Spectrum::Decay1 ? "decay1" : "decay2";
        CompileOptions options;
        Dualizer shapes = compile_source_text(net.name, net.text, options);
        auto grads = random_grads<float>(shapes.weights(), 7);
        std::mt19937 noise(11);
        std::vector<rt::Tensor> tensors;
        for (std::size_t i = 0; i < grads.size(); ++i) {
            const auto& w = shapes.weights()[i];
            give_spectrum(grads[i], w.shape[0], w.shape[1], s, noise);
            tensors.push_back(rt::Tensor::from(w.path, w.shape, grads[i]));
        }
        rt::write_tensors((fs::path(out) / name).string() + "/", tensors);
        for (const char* schedule : {"polar-express", "muon", "you", "cubic"})
            for (auto p : {kp::Precision::TF32, kp::Precision::BF16}) {
                HostCase c{net, schedule};
                c.precision = p;
                cuda::Program program = cuda::codegen_cuda(kernel_plan(plan, schedule, true, p));
                auto build = build_for_host(program.source);
                HostKernels kernels(*build, program.kernels);
                auto errors = compare_precision(c, program, kernels, s, false);
                for (std::size_t i = 0; i < errors.size(); ++i)
                    results.push_back({{"spectrum", name}, {"schedule", schedule}, {"precision", kp::to_string(p)},
                                       {"weight", shapes.weights()[i].path}, {"error", errors[i]}});
                WARN(name << " " << schedule << " " << kp::to_string(p) << ": " << errors[0] << " " << errors[1] << " " << errors[2]);
            }
    }
    std::ofstream(fs::path(out) / "modc.json") << results.dump(1) << "\n";
}

TEST_CASE("bf16 storage: the CUDA source loads bf16, computes in f32 and stores bf16", "[cuda][bf16]") {
    Net net = example("mlp.mod");
    auto plans = dual_plans(net);
    cuda::CudaOptions co;
    co.storage = cuda::Storage::BF16;
    cuda::Program p = cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express"), co);
    CHECK(p.storage == cuda::Storage::BF16);
    CHECK(p.tensor_element_size() == 2);
    CHECK_THAT(p.source, Contains("f32 (gradients and updates in bf16)"));
    CHECK_THAT(p.source, Contains("g0_sumsq(const unsigned short* __restrict__ grad, double* __restrict__ sums)"));
    CHECK_THAT(p.source, Contains("const float v = (float)(modc_bf16_to_f32(grad[i]) * inv);"));
    // f32 GEMMs cannot write bf16 updates: a finish kernel rounds them.
    CHECK_THAT(p.source, Contains("g0_m0_finish(unsigned short* __restrict__ update, const float* __restrict__ x)"));
    CHECK_THAT(p.source, Contains("update[i] = modc_f32_to_bf16(0.190476194f * x[i]);"));
    CHECK_THAT(p.source, Contains("cublasSsyrk(lower, T, n=256, k=784"));  // the work stays f32
    CHECK(p.source.find("#include") == std::string::npos);
    CHECK(p.source.find("__nv_bfloat16") == std::string::npos);
    // The f32 program has neither the conversions nor bf16 pointers.
    cuda::Program f32 = cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express"));
    CHECK(f32.source.find("modc_bf16") == std::string::npos);
    CHECK(f32.source.find("unsigned short") == std::string::npos);
    CHECK(f32.tensor_element_size() == 4);
    // bf16 storage computes in f32 only.
    co.type = ElementType::F64;
    CHECK_THROWS_AS(cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express"), co), cuda::Unsupported);
}

// The conversions are tested from the emitted text itself: the source of a bf16 program, with
// two exported wrappers appended, compiled for the host.
TEST_CASE("bf16 storage: the emitted conversions round to nearest even and keep NaN", "[cuda][bf16]") {
    auto plans = dual_plans(example("mlp.mod", {{"width", "16"}}));
    cuda::CudaOptions co;
    co.storage = cuda::Storage::BF16;
    cuda::Program p = cuda::codegen_cuda(kernel_plan(plans.front(), "polar-express"), co);
    auto build = build_for_host(p.source +
                                "\nextern \"C\" float test_widen(unsigned short h) { return modc_bf16_to_f32(h); }\n"
                                "extern \"C\" unsigned short test_narrow(float f) { return modc_f32_to_bf16(f); }\n");
    INFO(build->log);
    REQUIRE(build->status == 0);
    void* lib = ::dlopen(build->so.c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(lib != nullptr);
    auto widen = reinterpret_cast<float (*)(unsigned short)>(::dlsym(lib, "test_widen"));
    auto narrow = reinterpret_cast<unsigned short (*)(float)>(::dlsym(lib, "test_narrow"));
    REQUIRE(widen != nullptr);
    REQUIRE(narrow != nullptr);
    const auto bits = modc::test::float_bits;
    const auto from_bits = modc::test::float_from_bits;
    // Widening is exact: every bf16 is the upper half of its f32.
    std::size_t wrong = 0;
    for (std::uint32_t h = 0; h < 0x10000; ++h) wrong += bits(widen(static_cast<unsigned short>(h))) != h << 16;
    CHECK(wrong == 0);
    // Narrowing: named cases, then every upper half with the lower halves around a tie, each
    // against the host's conversion (support/bf16.hpp, tested on its own in test_tensor_io).
    for (auto [in, out] : modc::test::bf16_rounding_cases()) {
        INFO(std::hex << in);
        CHECK(narrow(from_bits(in)) == out);
    }
    for (std::uint32_t nan : modc::test::bf16_nan_inputs()) {
        INFO(std::hex << nan);
        CHECK(std::isnan(bf16_to_f32(narrow(from_bits(nan)))));
        CHECK((narrow(from_bits(nan)) & 0x8000) == (nan >> 16 & 0x8000));
    }
    wrong = 0;
    for (std::uint32_t hi = 0; hi < 0x10000; ++hi)
        for (std::uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu, 0x1234u, 0xc000u}) {
            const std::uint32_t u = hi << 16 | lo;
            if (std::isnan(from_bits(u)) ? !std::isnan(bf16_to_f32(narrow(from_bits(u))))
                                         : narrow(from_bits(u)) != f32_to_bf16(from_bits(u)))
                ++wrong;
        }
    CHECK(wrong == 0);
    ::dlclose(lib);
}

#ifdef MODC_WITH_CUDA

namespace {

struct NvrtcRun {
    std::string what;
    std::vector<std::string> kernels;
    cuda::Compiled compiled;
};

// Compiles a program for `arch` (no Catch2 assertions here: this runs on several threads).
NvrtcRun compile_program(const cuda::Nvrtc& nvrtc, const cuda::DiskCache& cache, const cuda::Program& program,
                            const std::string& what, const std::string& arch) {
    cuda::CompileRequest request;
    request.source = program.source;
    request.name = program.network + ".cu";
    request.arch = arch;
    return NvrtcRun{what + ", " + arch, program.kernels, cuda::compile(nvrtc, request, &cache)};
}

// No errors, every kernel reported by ptxas, none with spills.
void check_compiled(const NvrtcRun& c) {
    INFO(c.what << ":\n" << c.compiled.log);
    REQUIRE(c.compiled.ok);
    CHECK(!c.compiled.ptx.empty());
    CHECK(!c.compiled.cubin.empty());
    std::set<std::string> reported;
    for (const auto& r : cuda::parse_ptxas_info(c.compiled.log)) {
        INFO(r.name << ": " << r.registers << " registers, " << r.spill_stores << " bytes spill stores, " << r.spill_loads
                    << " bytes spill loads");
        CHECK(r.spill_stores == 0);
        CHECK(r.spill_loads == 0);
        CHECK(r.registers > 0);
        reported.insert(r.name);
    }
    CHECK(reported == std::set<std::string>(c.kernels.begin(), c.kernels.end()));
}

}  // namespace

TEST_CASE("every kernel of every example compiles with NVRTC for sm_80 and sm_90, without spills", "[cuda][nvrtc]") {
    std::string why;
    const cuda::Nvrtc* nvrtc = cuda::load_nvrtc(&why);
    if (!nvrtc) {
        WARN("NVRTC is not available here, so the kernels were not compiled: " << why);
        return;
    }
    // A cache in the build tree: later runs of the tests skip the compilations they already did.
    cuda::DiskCache cache(fs::path(MODC_TEST_CACHE_DIR) / "nvrtc");
    // The examples under every schedule; the shared cases under the two kinds of schedule (a
    // fixed list of steps, and steps until convergence): muon and you differ from
    // polar-express only in the numbers, and this keeps a first run of the tests short.
    std::vector<std::pair<Net, std::vector<std::string>>> nets{
        {example("mlp.mod"), kGpuSchedules}, {example("cnn.mod"), kGpuSchedules}, {example("gpt.mod"), kGpuSchedules}};
    for (auto& n : shared_cases()) nets.push_back({n, {"polar-express", "cubic"}});
    std::vector<std::pair<cuda::Program, std::string>> programs;
    for (const auto& [net, schedules] : nets)
        for (const auto& plan : dual_plans(net))
            for (const auto& schedule : schedules)
                programs.emplace_back(cuda::codegen_cuda(kernel_plan(plan, schedule)),
                                      net.name + " network " + plan.network + ", " + schedule);
    // Every kernel kind, in f32 and f64, with either form of the matmuls.
    const DualPlan kinds = dual_plans(Net{"kinds.mod", kKinds, {}}).front();
    for (auto type : {ElementType::F32, ElementType::F64})
        for (auto [schedule, mode] : {std::pair{"polar-express", cuda::MatmulMode::Symmetric}, {"cubic", cuda::MatmulMode::Batched}}) {
            cuda::CudaOptions co;
            co.type = type;
            co.matmul = mode;
            programs.emplace_back(cuda::codegen_cuda(kernel_plan(kinds, schedule), co),
                                  std::string("kinds.mod, ") + schedule + ", " + to_string(type));
        }
    // bf16 gradients and updates: every kernel kind, and the examples.
    cuda::CudaOptions bf16;
    bf16.storage = cuda::Storage::BF16;
    for (auto [schedule, mode] : {std::pair{"polar-express", cuda::MatmulMode::Symmetric}, {"cubic", cuda::MatmulMode::Batched}}) {
        bf16.matmul = mode;
        programs.emplace_back(cuda::codegen_cuda(kernel_plan(kinds, schedule), bf16), std::string("kinds.mod, ") + schedule + ", bf16");
    }
    bf16.matmul = cuda::MatmulMode::Auto;
    for (const char* file : {"mlp.mod", "cnn.mod", "gpt.mod"})
        programs.emplace_back(cuda::codegen_cuda(kernel_plan(dual_plans(example(file)).front(), "polar-express"), bf16),
                              std::string(file) + ", polar-express, bf16");
    // bf16 GEMMs (their kernels read and write bf16; tf32's are f32's): every kernel kind, the
    // cubic schedule and a Gram restart, and GPT-2 small.
    for (const char* schedule : {"polar-express", "cubic", "you"})
        programs.emplace_back(cuda::codegen_cuda(kernel_plan(kinds, schedule, true, kp::Precision::BF16)),
                              std::string("kinds.mod, ") + schedule + ", bf16 GEMMs");
    programs.emplace_back(cuda::codegen_cuda(kernel_plan(dual_plans(example("gpt.mod")).front(), "polar-express", true,
                                                         kp::Precision::BF16)),
                          "gpt.mod, polar-express, bf16 GEMMs");
    auto start = std::chrono::steady_clock::now();
    int cached = 0;
    for (const auto& [program, what] : programs) {
        // sm_80 and sm_90 side by side: NVRTC compiles separate programs concurrently.
        auto sm80 = std::async(std::launch::async, [&, &program = program, &what = what] {
            return compile_program(*nvrtc, cache, program, what, "sm_80");
        });
        NvrtcRun sm90 = compile_program(*nvrtc, cache, program, what, "sm_90");
        NvrtcRun c80 = sm80.get();
        check_compiled(c80);
        check_compiled(sm90);
        cached += c80.compiled.from_cache + sm90.compiled.from_cache;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN("NVRTC " << cuda::nvrtc_version(*nvrtc) << ": " << programs.size() << " programs x 2 architectures in " << seconds
                  << " s, " << cached << " of them from the cache in " << cache.dir());
}

TEST_CASE("an NVRTC error comes back with its log", "[cuda][nvrtc]") {
    const cuda::Nvrtc* nvrtc = cuda::load_nvrtc(nullptr);
    if (!nvrtc) return;
    cuda::CompileRequest request;
    request.source = "#line 7 \"net.mod\"\nextern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }\n";
    request.arch = "sm_80";
    cuda::Compiled c = cuda::compile(*nvrtc, request);
    CHECK_FALSE(c.ok);
    CHECK_THAT(c.log, Contains("net.mod(7)"));
    CHECK_THAT(c.log, Contains("undefined_name"));
}

#endif

TEST_CASE("the disk cache: hits, corrupted entries, two writers at once", "[cuda][cache]") {
    CHECK(cuda::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(cuda::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(cuda::sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    TempDir dir;
    cuda::DiskCache cache(dir.path / "c");
    std::string key = cuda::DiskCache::key({"source", "-arch=sm_90", "13.0"});
    CHECK(key != cuda::DiskCache::key({"sourc", "e-arch=sm_90", "13.0"}));
    CHECK(cache.load(key).status == cuda::DiskCache::Status::Miss);

    int made = 0;
    auto make = [&]() -> std::optional<std::string> {
        ++made;
        return std::string("payload\0with a NUL", 18);
    };
    cuda::DiskCache::Status status;
    CHECK(*cache.get_or_make(key, make, &status) == std::string("payload\0with a NUL", 18));
    CHECK(status == cuda::DiskCache::Status::Miss);
    CHECK(*cache.get_or_make(key, make, &status) == std::string("payload\0with a NUL", 18));
    CHECK(status == cuda::DiskCache::Status::Hit);
    CHECK(made == 1);

    SECTION("a flipped byte is detected and the entry made again") {
        std::string bytes = read(cache.path_of(key));
        bytes[bytes.size() - 3] ^= 0x20;
        std::ofstream(cache.path_of(key), std::ios::binary) << bytes;
        auto found = cache.load(key);
        CHECK(found.status == cuda::DiskCache::Status::Corrupt);
        CHECK_THAT(found.why, Contains("checksum"));
        CHECK(*cache.get_or_make(key, make, &status) == std::string("payload\0with a NUL", 18));
        CHECK(status == cuda::DiskCache::Status::Corrupt);
        CHECK(made == 2);
        CHECK(cache.load(key).status == cuda::DiskCache::Status::Hit);
    }
    SECTION("a truncated entry is detected and the entry made again") {
        std::string bytes = read(cache.path_of(key));
        for (std::size_t keep : {bytes.size() - 1, std::size_t(20), std::size_t(0)}) {
            std::ofstream(cache.path_of(key), std::ios::binary) << bytes.substr(0, keep);
            CHECK(cache.load(key).status == cuda::DiskCache::Status::Corrupt);
        }
        CHECK(cache.get_or_make(key, make, &status).has_value());
        CHECK(status == cuda::DiskCache::Status::Corrupt);
        CHECK(cache.load(key).status == cuda::DiskCache::Status::Hit);
    }
    SECTION("failures are not stored") {
        std::string other = cuda::DiskCache::key({"other"});
        CHECK_FALSE(cache.get_or_make(other, [] { return std::optional<std::string>(); }).has_value());
        CHECK(cache.load(other).status == cuda::DiskCache::Status::Miss);
    }
    SECTION("two processes and several threads storing the same key at once") {
        std::string big(1 << 20, 'x');
        for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
        std::string shared = cuda::DiskCache::key({"shared"});
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            bool ok = true;
            for (int i = 0; i < 10; ++i) ok &= cache.store(shared, big);
            ::_exit(ok ? 0 : 1);
        }
        std::vector<std::thread> threads;
        std::atomic<int> failures{0};
        for (int t = 0; t < 3; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 5; ++i) {
                    if (!cache.store(shared, big)) ++failures;
                    auto found = cache.load(shared);  // never a partial entry
                    if (found.status != cuda::DiskCache::Status::Hit || found.payload != big) ++failures;
                }
            });
        for (auto& t : threads) t.join();
        int child_status = 0;
        ::waitpid(child, &child_status, 0);
        CHECK(WIFEXITED(child_status));
        CHECK(WEXITSTATUS(child_status) == 0);
        CHECK(failures == 0);
        CHECK(cache.load(shared).payload == big);
        // No temporary files are left behind.
        for (const auto& e : fs::directory_iterator(cache.dir()))
            CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
    }
}

TEST_CASE("modc dualize --backend cuda without a GPU says so and exits 1", "[cuda][cli]") {
#ifdef MODC_WITH_CUDA
    std::string why = cuda::gpu_unavailable();
    if (why.empty()) {
        WARN("this machine has a usable GPU; the no-GPU message was not checked");
        return;
    }
#endif
    TempDir dir;
    auto run = run_modc("dualize " + quote(std::string(MODC_SOURCE_DIR) + "/examples/mlp.mod") + " --in " +
                        quote(dir / "grads.safetensors") + " --out " + quote(dir / "updates.safetensors") + " --backend cuda");
    CHECK(run.status == 1);
    std::string message = run.err;
    INFO(message);
#ifdef MODC_WITH_CUDA
    CHECK_THAT(message, Contains("modc: error: the CUDA backend cannot run here: " + why + "; use --backend cpu"));
#else
    CHECK_THAT(message, Contains("modc: error: the CUDA backend cannot run here: " + backend_unavailable(Backend::Cuda)));
    CHECK_THAT(message, Contains("this modc was built without the CUDA toolkit"));
#endif
    CHECK(!fs::exists(dir.path / "updates.safetensors"));
}

TEST_CASE("modc bench --backend cuda without a GPU: one line on stderr, nothing on stdout, exit 1", "[cuda][cli][bench]") {
    const std::string why = backend_unavailable(Backend::Cuda);
    if (why.empty()) {
        WARN("this machine has a usable GPU; the no-GPU message was not checked");
        return;
    }
    const std::string mlp = quote(std::string(MODC_SOURCE_DIR) + "/examples/mlp.mod");
    for (const char* extra : {"", " --json", " --dtype bf16 --runs 1"}) {
        auto run = run_modc("bench " + mlp + " --backend cuda" + extra);
        INFO("modc bench --backend cuda" << extra << "\n" << run.err);
        CHECK(run.status == 1);
        CHECK(run.out.empty());
        // The API's BackendUnavailable message (a modc built without the CUDA toolkit says that instead).
        CHECK(run.err == "modc: error: the CUDA backend cannot run here: " + why + "\n");
    }
}

TEST_CASE("the API with Backend::Cuda without a GPU throws BackendUnavailable, saying why", "[cuda][api]") {
    std::string why = backend_unavailable(Backend::Cuda);
    if (why.empty()) {
        WARN("this machine has a usable GPU; the no-GPU error was not checked");
        return;
    }
#ifdef MODC_WITH_CUDA
    CHECK(why == cuda::gpu_unavailable());
#else
    CHECK_THAT(why, Contains("this modc was built without the CUDA toolkit"));
#endif
    CHECK(backend_unavailable(Backend::Cpu).empty());
    CompileOptions options;
    options.backend = Backend::Cuda;
    const std::string mlp = std::string(MODC_SOURCE_DIR) + "/examples/mlp.mod";
    CHECK_THROWS_AS(compile_file(mlp, options), BackendUnavailable);
    CHECK_THROWS_AS(compile_file(mlp, options), CompileError);  // what callers of compile_* already catch
    CHECK_THROWS_WITH(compile_file(mlp, options), "the CUDA backend cannot run here: " + why);
    // The C API gives the same message.
    modc_compile_options c_options{nullptr, nullptr, MODC_BF16, MODC_CUDA};
    char* error = nullptr;
    CHECK(modc_compile_file_with(mlp.c_str(), &c_options, &error) == nullptr);
    REQUIRE(error != nullptr);
    CHECK(std::string(error) == "the CUDA backend cannot run here: " + why);
    modc_free_string(error);
}

TEST_CASE("modc emit --emit cuda and --emit ptx", "[cuda][cli]") {
    TempDir dir;
    std::string mlp = quote(std::string(MODC_SOURCE_DIR) + "/examples/mlp.mod");
    modc::test::ModcRun last;  // the latest run, read by the checks after it
    auto run = [&](const std::string& args) {
        last = run_modc("emit " + mlp + " " + args, "MODC_CACHE_DIR=" + quote(dir / "cache"));
        return last.status;
    };
    CHECK(run("--emit cuda") == 0);
    CHECK_THAT(last.out, Contains("__global__"));
    CHECK(run("--emit cuda --schedule svd") == 1);
    CHECK_THAT(last.err, Contains("svd"));
    CHECK(run("--emit cuda --dtype bf16 --precision f32") == 0);
    CHECK_THAT(last.out, Contains("update[i] = modc_f32_to_bf16(0.190476194f * x[i]);"));
    CHECK(run("--emit llvm --dtype bf16") == 1);
    CHECK_THAT(last.err, Contains("--dtype bf16 is the CUDA backend's storage"));
    // The default precision (bf16): the last GEMM writes the bf16 updates, no finish kernel.
    CHECK(run("--emit cuda --dtype bf16") == 0);
    CHECK_THAT(last.out, Contains("CUDA_R_16BF, ldc=256, 65536, batch=1, CUBLAS_COMPUTE_32F)    // A = X X^T"));
    CHECK_THAT(last.out, Contains("update[0], CUDA_R_16BF, ldc=784"));
#ifdef MODC_WITH_CUDA
    if (!cuda::load_nvrtc(nullptr)) return;
    CHECK(run("--emit ptx") == 0);
    CHECK_THAT(last.out, Contains(".target sm_90"));
    CHECK_THAT(last.out, Contains(".entry g0_normalize"));
    CHECK(run("--emit ptx --arch sm_80") == 0);
    CHECK_THAT(last.out, Contains(".target sm_80"));
    CHECK(run("--emit ptx --arch sm_80 --dtype bf16 --precision f32") == 0);
    CHECK_THAT(last.out, Contains(".param .u64 g0_m0_finish_param_0"));
    CHECK(run("--emit ptx --arch sm_8") == 1);
    CHECK_THAT(last.err, Contains("--arch"));
#else
    CHECK(run("--emit ptx") == 1);
    CHECK(last.err == "modc: error: " + backend_unavailable(Backend::Cuda) + "; --emit ptx needs it\n");
    CHECK_THAT(last.err, Contains("this modc was built without the CUDA toolkit"));
#endif
}

#ifdef MODC_WITH_CUDA

namespace {

// `modc dualize --backend cuda-sim`: the CUDA program on the simulator (runtime/cuda/sim), which
// runs the host build of the same source: the whole of runtime/cuda/gpu.cpp (loading, buffers,
// launches, cuBLAS calls, graph capture and replay) and the CLI path, against `--backend cpu`.
// The simulator's caches (NVRTC and host builds) survive between test runs.
std::string sim_env() { return "MODC_CACHE_DIR=" + quote(MODC_TEST_CACHE_DIR); }

// T: float, double, or std::uint16_t for bf16 gradients (random f32 values rounded to bf16).
// `precision`: of the GPU's GEMMs (--precision); the CPU runs f32 (or f64).
template <class T>
void check_sim(const Net& net, const std::string& schedule, double tolerance, kp::Precision precision = kp::Precision::F32) {
    auto plans = dual_plans(net);
    REQUIRE(plans.size() == 1);
    const DualPlan& plan = plans.front();
    constexpr bool bf16 = std::is_same_v<T, std::uint16_t>;

    TempDir dir;
    std::mt19937 rng(11);
    std::normal_distribution<double> normal;
    std::vector<rt::Tensor> grads;
    for (const auto& l : plan.leaves) {
        std::int64_t n = 1;
        for (auto d : l.shape) n *= d;
        using V = std::conditional_t<bf16, float, T>;
        std::vector<V> values(static_cast<std::size_t>(n));
        for (auto& v : values) v = static_cast<V>(normal(rng));
        grads.push_back(rt::Tensor::from(l.path, l.shape, values));
        if (bf16) grads.back() = rt::convert(grads.back(), rt::DType::BF16);
    }
    rt::write_tensors((dir.path / "grads.safetensors").string(), grads);
    std::string args = "dualize " + quote(net.name) + " --in " + quote((dir.path / "grads.safetensors").string()) +
                       " --schedule " + schedule;
    for (const auto& [k, v] : net.set) args += " --set " + k + "=" + v;
    auto run = [&](const std::string& env, const std::string& backend) {
        auto result = run_modc(args + " --backend " + backend + " --out " + quote(dir / (backend + ".safetensors")), env);
        INFO(env << " modc " << args << " --backend " << backend << "\n" << result.err);
        REQUIRE(result.status == 0);
    };
    run("", "cpu");
    args += std::string(" --precision ") + kp::to_string(precision);
    run(sim_env(), "cuda-sim");
    auto cpu = rt::read_tensors((dir.path / "cpu.safetensors").string());
    auto gpu = rt::read_tensors((dir.path / "cuda-sim.safetensors").string());
    REQUIRE(cpu.size() == gpu.size());
    for (std::size_t i = 0; i < cpu.size(); ++i) {
        REQUIRE(cpu[i].name == gpu[i].name);
        REQUIRE(cpu[i].shape == gpu[i].shape);
        REQUIRE(cpu[i].dtype == grads.front().dtype);
        REQUIRE(gpu[i].dtype == grads.front().dtype);
        // bf16 updates compared as their f32 values.
        using V = std::conditional_t<bf16, float, T>;
        rt::Tensor a_t = bf16 ? rt::convert(cpu[i], rt::DType::F32) : cpu[i];
        rt::Tensor b_t = bf16 ? rt::convert(gpu[i], rt::DType::F32) : gpu[i];
        auto a = a_t.template as<V>();
        auto b = b_t.template as<V>();
        std::vector<double> diff(a.size()), ref(a.size());
        for (std::size_t e = 0; e < a.size(); ++e) {
            diff[e] = static_cast<double>(b[e]) - static_cast<double>(a[e]);
            ref[e] = static_cast<double>(a[e]);
        }
        double error = norm(ref) > 0 ? norm(diff) / norm(ref) : norm(diff);
        INFO(net.name << ", " << schedule << ": weight " << cpu[i].name << ", relative error " << error);
        CHECK(error <= tolerance);
    }
}

}  // namespace

TEST_CASE("modc dualize --backend cuda-sim gives the CPU backend's updates", "[cuda][sim]") {
    check_sim<float>(example("mlp.mod", {{"width", "64"}}), "polar-express", 3e-5);
    check_sim<double>(example("cnn.mod", {{"width", "8"}}), "cubic", 1e-11);
    check_sim<float>(small_gpt(), "muon", 3e-5);
    // bf16 on both sides: the CPU widens, runs f32 and rounds; the GPU kernels do the same. The
    // f32 results differ by rounding, so a few elements round to neighbouring bf16 values.
    check_sim<std::uint16_t>(small_gpt(), "polar-express", kBf16 / 4);
    TempDir dir;
    fs::path kinds = dir.path / "kinds.mod";
    std::ofstream(kinds) << kKinds;
    check_sim<double>(Net{kinds.string(), kKinds, {}}, "you", 1e-11);
    check_sim<std::uint16_t>(Net{kinds.string(), kKinds, {}}, "you", kBf16 / 4);
    // Tensor cores: runtime/cuda calls cublasGemmStridedBatchedEx, with bf16 or f32 inputs, a
    // bf16 or f32 C (the simulator rounds as the GPU does); the CPU runs f32.
    check_sim<float>(small_gpt(), "polar-express", kPrecisionTolerance.at("bf16"), kp::Precision::BF16);
    check_sim<float>(small_gpt(), "muon", kPrecisionTolerance.at("tf32"), kp::Precision::TF32);
    check_sim<std::uint16_t>(Net{kinds.string(), kKinds, {}}, "you", kPrecisionTolerance.at("bf16"), kp::Precision::BF16);
}

// `modc bench --backend cuda-sim`: every field of the JSON report, against the CPU's report for
// the same network and schedule (both run the same kernel plan, Gram Newton-Schulz for the wide
// input matrix included, so they count the same flops).
TEST_CASE("modc bench --backend cuda-sim", "[cuda][sim][bench]") {
    const Net net = example("mlp.mod", {{"width", "64"}});
    const DualPlan plan = dual_plans(net).front();
    const std::string args = "bench " + quote(net.name) + " --set width=64 --schedule muon --runs 5 --warmup 1";
    auto cpu_run = run_modc(args + " --json");
    INFO(cpu_run.err);
    REQUIRE(cpu_run.status == 0);
    auto cpu = nlohmann::json::parse(cpu_run.out);  // not const: a missing field reads as null, a failed check
    CHECK(cpu["backend"] == "cpu");
    CHECK(cpu["device"] == "cpu");
    CHECK_FALSE(cpu.contains("gpu_median_seconds"));
    CHECK_FALSE(cpu.contains("kernels_from_cache"));

    TempDir dir;
    for (bool bf16 : {false, true}) {
        const std::string env = "MODC_CACHE_DIR=" + quote(dir.path / (bf16 ? "cache_bf16" : "cache_f32"));
        const std::string cuda_args = args + " --backend cuda-sim --precision f32" + (bf16 ? " --dtype bf16" : "");
        // f32 GEMMs: the same plan as the CPU's (tf32 and bf16 restart Gram Newton-Schulz).
        // The second run finds the kernels (NVRTC's and the host build) in the cache the first one filled.
        for (bool cached : {false, true}) {
            auto run = run_modc(cuda_args + " --json", env);
            INFO((bf16 ? "bf16" : "f32") << (cached ? ", cached" : ", compiled") << "\n" << run.err << run.out);
            REQUIRE(run.status == 0);
            auto j = nlohmann::json::parse(run.out);
            CHECK(j["backend"] == "cuda-sim");
            CHECK(j["dtype"] == (bf16 ? "bf16" : "f32"));
            CHECK(j["device"] == "modc CUDA simulator (the host), sm_90");
            CHECK(j["kernels_from_cache"] == cached);
            for (const char* same : {"network", "schedule", "weights", "parameters", "runs", "flops"}) {
                INFO(same);
                CHECK(j[same] == cpu[same]);
            }
            CHECK(j["runs"] == 5);
            CHECK(j["compile_seconds"].get<double>() > 0);
            for (std::string time : {"", "gpu_"}) {
                INFO(time + "*_seconds");
                const double min = j[time + "min_seconds"], p10 = j[time + "p10_seconds"],
                             median = j[time + "median_seconds"], p90 = j[time + "p90_seconds"];
                CHECK(min > 0);
                CHECK(min <= p10);
                CHECK(p10 <= median);
                CHECK(median <= p90);
            }
            // Each run's wall time holds its GPU time, so the medians are in that order too.
            CHECK(j["gpu_median_seconds"].get<double>() <= j["median_seconds"].get<double>());
            const double flops = j["flops"];
            CHECK(j["gflops_per_second"].get<double>() == Approx(flops / j["median_seconds"].get<double>() / 1e9));
            CHECK(j["gpu_gflops_per_second"].get<double>() == Approx(flops / j["gpu_median_seconds"].get<double>() / 1e9));
        }
        // The text report says the same.
        auto text = run_modc(cuda_args, env);
        INFO(text.err);
        REQUIRE(text.status == 0);
        CHECK_THAT(text.out, Contains("device        modc CUDA simulator (the host), sm_90; kernels from the NVRTC cache"));
        CHECK_THAT(text.out, Contains("run (wall)    median "));
        CHECK_THAT(text.out, Contains("run (GPU)     median "));
        CHECK_THAT(text.out, Contains("GFLOP/s on the GPU time"));
    }
}

namespace {

void check_sim_api(const char* net, bool bf16) {
    const char* type = bf16 ? "bf16" : "f32";
    CompileOptions options;
    options.schedule = "you";
    options.dtype = bf16 ? DType::BF16 : DType::F32;
    Dualizer cpu = compile_file(net, options);
    options.backend = Backend::CudaSim;
    Dualizer gpu = compile_file(net, options);
    CHECK(gpu.backend() == Backend::CudaSim);
    CHECK(gpu.dtype() == options.dtype);
    CHECK_THAT(gpu.device(), Contains("modc CUDA simulator (the host), sm_90"));
    CHECK_THAT(gpu.device(), Contains("one CUDA graph"));
    REQUIRE(gpu.weights().size() == cpu.weights().size());

    auto wide = random_grads<float>(gpu.weights(), 3);
    std::vector<std::vector<float>> u_cpu, u_gpu;
    std::vector<std::vector<std::uint16_t>> narrow, n_cpu, n_gpu, n_c;
    for (auto& g : wide) {
        narrow.emplace_back();
        for (float v : g) narrow.back().push_back(f32_to_bf16(v));
        u_cpu.emplace_back(g.size(), 0.0f);
        u_gpu.emplace_back(g.size(), 0.0f);
        n_cpu.emplace_back(g.size(), 0);
        n_gpu.emplace_back(g.size(), 0);
        n_c.emplace_back(g.size(), 0);
    }
    auto in = [](const auto& vs) {
        std::vector<const typename std::decay_t<decltype(vs)>::value_type::value_type*> out;
        for (const auto& v : vs) out.push_back(v.data());
        return out;
    };
    auto out = [](auto& vs) {
        std::vector<typename std::decay_t<decltype(vs)>::value_type::value_type*> p;
        for (auto& v : vs) p.push_back(v.data());
        return p;
    };
    // Each result as f32, for the comparison.
    std::vector<std::vector<float>> a(wide.size()), b(wide.size());
    if (bf16) {
        cpu.run(in(narrow).data(), out(n_cpu).data());
        for (int twice = 0; twice < 2; ++twice) gpu.run(in(narrow).data(), out(n_gpu).data());  // the graph replays
        for (std::size_t i = 0; i < wide.size(); ++i)
            for (std::size_t e = 0; e < wide[i].size(); ++e) {
                a[i].push_back(bf16_to_f32(n_cpu[i][e]));
                b[i].push_back(bf16_to_f32(n_gpu[i][e]));
            }
        // The C API, on the same simulator, gives the same bits.
        modc_compile_options c_options{nullptr, "you", MODC_BF16, MODC_CUDA_SIM};
        char* error = nullptr;
        modc_dualizer* d = modc_compile_file_with(net, &c_options, &error);
        INFO((error ? error : ""));
        REQUIRE(d != nullptr);
        REQUIRE(modc_dualize_bf16(d, in(narrow).data(), out(n_c).data(), &error) == 0);
        CHECK(n_c == n_gpu);
        modc_free(d);
    } else {
        cpu.run(in(wide).data(), out(u_cpu).data());
        for (int twice = 0; twice < 2; ++twice) gpu.run(in(wide).data(), out(u_gpu).data());
        a = u_cpu;
        b = u_gpu;
    }
    std::vector<std::vector<double>> f64(wide.size());
    CHECK_THROWS_AS(gpu.run(in(f64).data(), out(f64).data()), std::invalid_argument);
    for (std::size_t i = 0; i < wide.size(); ++i) {
        std::vector<double> diff, ref;
        for (std::size_t e = 0; e < a[i].size(); ++e) {
            diff.push_back(static_cast<double>(b[i][e]) - a[i][e]);
            ref.push_back(a[i][e]);
        }
        double error = norm(ref) > 0 ? norm(diff) / norm(ref) : norm(diff);
        INFO(type << ": weight " << gpu.weights()[i].path << ", relative error " << error);
        // The GPU's default precision is bf16 GEMMs (the C API's too), the CPU's f32.
        CHECK(error <= kPrecisionTolerance.at("bf16"));
    }
}

}  // namespace

// The C++ and C APIs with Backend::CudaSim, f32 and bf16 (in one process: the simulator is part
// of modc, opened by nothing).
TEST_CASE("the C++ and C APIs with Backend::CudaSim", "[cuda][sim][api]") {
    ::setenv("MODC_CACHE_DIR", MODC_TEST_CACHE_DIR, 1);
    TempDir dir;
    const fs::path kinds = dir.path / "kinds.mod";
    std::ofstream(kinds) << kKinds;
    for (bool bf16 : {false, true}) check_sim_api(kinds.c_str(), bf16);
}

#endif
