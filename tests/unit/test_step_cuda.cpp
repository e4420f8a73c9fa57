// The optimizer step on CUDA (compiler/backend/codegen_cuda_step) without a GPU:
//   - the source: one kernel per segment and weight size, in order, every signature the same,
//     numbers as literals, the launch options; bf16 storage refused;
//   - NVRTC compiles it for sm_80 and sm_90 with no error, warning or spill;
//   - the same text compiled for the host (runtime/cuda/sim/host_build.hpp) and run segment by
//     segment, with a stand-in for the dualizer between, gives what the CPU backend's step
//     (cpu::Stepper on codegen_llvm_step's kernels, the same stand-in) gives, over three steps
//     with the state carried over and the hyperparameters changed between them, in f32 and f64;
//     and for Nesterov, what the step written out by hand in double gives.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <random>
#include <set>
#include <sstream>

#include "compiler/analysis/compilation.hpp"
#include "compiler/analysis/lower_step.hpp"
#include "compiler/backend/codegen_cuda_step.hpp"
#include "compiler/backend/codegen_llvm.hpp"
#include "cuda_host_build.hpp"
#include "runtime/cpu/stepper.hpp"
#include "support.hpp"
#ifdef MODC_WITH_CUDA
#include "runtime/cuda/nvrtc.hpp"
#endif

using namespace modc;
using Catch::Matchers::Contains;

namespace {

using modc::test::build_for_host;
using modc::test::HostBuild;
using modc::test::HostKernels;

// Four weights, three sizes: 5 x 16, 16 x 16 (twice: one kernel serves both), 16 x 8.
const char* kNetwork = "network n = Linear(8, 16) @ ReLU @ Linear(16, 16) @ ReLU @ Linear(16, 16) @ ReLU @ Linear(16, 5)\n";

struct OptimizerText {
    std::string name;
    std::string text;
    int scale = 1;  // of the test values' exponents (mixed): 3 for blocks that square gradients
};

const std::vector<OptimizerText>& optimizers() {
    static const std::vector<OptimizerText> all{
        {"muon", "optimizer muon(lr = 0.02, beta = 0.95) {\n    m = beta * m + grad\n    W -= lr * dualize(m)\n}\n"},
        {"nesterov",
         "optimizer nesterov(lr = 0.02, beta = 0.95) {\n    m = beta * m + grad\n    W -= lr * dualize(grad + beta * m)\n}\n"},
        // Decoupled weight decay: W is assigned in both segments.
        {"decay",
         "optimizer decay(lr = 0.02, beta = 0.9, wd = 0.1) {\n    m = beta * m + grad\n    W -= lr * wd * W\n"
         "    W -= lr * dualize(m)\n}\n"},
        // ^ on parameters (and in a default), unary minus, division by numbers.
        {"powers",
         "optimizer powers(lr = 0.1, beta = 0.9, t = 3, eps = 10 ^ -3) {\n    m = beta * m + (1 - beta) * grad\n"
         "    v = m / (1 - beta ^ t)\n    W += -lr / (1 + eps) * dualize(v / 2) - lr ^ 2 * W / 4\n}\n"},
        // Two dualize calls in one statement: one segment fills two dualizer inputs.
        {"two",
         "optimizer two(lr = 0.02, beta = 0.9, mix = 0.25) {\n    m = beta * m + grad\n"
         "    W -= lr * (dualize(m) + mix * dualize(grad - m))\n}\n"},
        // Temporaries: t is read after the dualize (from its buffer), u holds the dualizer's output.
        {"temporary",
         "optimizer temporary(lr = 0.02, beta = 0.9) {\n    t = beta * m + grad\n    u = dualize(t)\n    W -= lr * u\n"
         "    m = t + 0.5 * grad\n}\n"},
        // Three segments, the first with no statement of its own.
        {"twice",
         "optimizer twice(lr = 0.02, beta = 0.9) {\n    W -= lr * dualize(grad)\n    m = beta * m + grad\n"
         "    W -= lr / 2 * dualize(m)\n}\n"},
        // Adam: sqrt, tensor products and quotients, the step count in the bias corrections.
        {"adam",
         "optimizer adam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8) {\n    m = beta1 * m + (1 - beta1) * grad\n"
         "    v = beta2 * v + (1 - beta2) * grad * grad\n"
         "    W -= lr / (1 - beta1 ^ step) * m / (sqrt(v) / sqrt(1 - beta2 ^ step) + eps)\n}\n", 3},
        // Every other elementwise function and comparison, and the weight's numbers.
        {"functions",
         "optimizer functions(lr = 0.01, beta = 0.9, eps = 1e-8) {\n    m = beta * m + (1 - beta) * grad\n"
         "    v = max(beta * v, abs(grad))\n    u = dualize(m)\n"
         "    W -= lr * where(u * W >= 0, u, 0.5 * u) * clamp(fan_in / fan_out, 0.5, 2) * target / scale\n"
         "    W -= lr * sign(m) * min(step, 2) * (grad != 0) * (W == W) * (u < 1) * (u > -1) * (abs(grad) <= 1e30)\n"
         "    W -= lr * m / (v + eps)\n}\n", 3},
    };
    return all;
}

struct Built {
    step::StepPlan plan;
    std::vector<std::int64_t> elements;  // per weight
    int scale = 1;                       // OptimizerText::scale
};

Built build(const OptimizerText& o) {
    auto c = compile_source(o.name + ".mod", std::string(kNetwork) + o.text);
    INFO(o.name << ":\n" << c->diags.render());
    REQUIRE_FALSE(c->diags.has_errors());
    REQUIRE(c->file.optimizers.size() == 1);
    REQUIRE(c->plans.size() == 1);
    auto plan = lower_step(c->file.optimizers.front(), c->diags);
    REQUIRE(plan);
    Built b{std::move(*plan), {}, o.scale};
    for (const auto& leaf : c->plans.front().leaves) {
        std::int64_t n = 1;
        for (auto d : leaf.shape) n *= d;
        b.elements.push_back(n);
    }
    REQUIRE(b.elements == std::vector<std::int64_t>{80, 256, 256, 128});  // leaves from the output back
    return b;
}

cuda::CudaOptions options(ElementType type, unsigned block = 256, unsigned max_grid = 1024) {
    cuda::CudaOptions o;
    o.type = type;
    o.block = block;
    o.max_grid = max_grid;
    return o;
}

// ---- running the step on the host -----------------------------------------------------------

// The dualizer's stand-in, for both backends: out = 0.5 in, elementwise, in T.
template <class T>
void stand_in(const std::vector<std::int64_t>& elements, const T* const* in, T* const* out) {
    for (std::size_t i = 0; i < elements.size(); ++i)
        for (std::int64_t j = 0; j < elements[i]; ++j) out[i][j] = T(0.5) * in[i][j];
}

// Buffers carry kGuard elements past the weight's end, set to a sentinel: a kernel that writes
// past n shows.
constexpr std::int64_t kGuard = 8;
template <class T>
T sentinel() {
    return T(-12345.25);
}

// Numbers for each weight of a test (step_plan.hpp: WeightConst), each of its own.
inline std::vector<cpu::Stepper<double>::Constants> test_constants(const std::vector<std::int64_t>& elements) {
    std::vector<cpu::Stepper<double>::Constants> out;
    for (std::size_t i = 0; i < elements.size(); ++i)
        out.push_back({1.0, static_cast<double>(elements[i]), 0.5 + static_cast<double>(i), 0.25 * static_cast<double>(i + 1)});
    return out;
}

// The CUDA step run on the host as a runtime would run it on a GPU: per segment, each weight's
// kernel over ceil(n / block) blocks (at most max_grid), then the dualizer once per call.
// Temporaries and the dualizer's buffers start as NaN (reading one before it is written
// shows); state variables as zero, like cpu::Stepper's.
template <class T>
class HostStepper {
public:
    HostStepper(const step::StepPlan& plan, std::vector<std::int64_t> elements, const cuda::StepProgram& program,
                const HostKernels& kernels)
        : plan_(plan), elements_(std::move(elements)), program_(program), kernels_(kernels) {
        const T nan = std::numeric_limits<T>::quiet_NaN();
        for (const auto& v : plan_.vars) vars.push_back(tensors(v.state ? T(0) : nan));
        for (int d = 0; d < plan_.dual_count; ++d) {
            in.push_back(tensors(nan));
            out.push_back(tensors(nan));
        }
    }

    void step(std::vector<std::vector<T>>& weights, std::vector<std::vector<T>>& grads, std::vector<double> hypers,
              long long step) {
        std::vector<double> scalars(1 + step::kWeightConsts);  // the step count, the weight's numbers
        scalars[0] = static_cast<double>(step);
        std::vector<T*> buffers(static_cast<std::size_t>(plan_.buffer_count()));
        for (std::size_t k = 0; k < plan_.segments.size(); ++k) {
            for (std::size_t i = 0; i < elements_.size(); ++i) {
                const std::int64_t n = elements_[i];
                buffers[0] = weights[i].data();
                buffers[1] = grads[i].data();
                for (std::size_t v = 0; v < vars.size(); ++v)
                    buffers[static_cast<std::size_t>(plan_.var_buffer(static_cast<int>(v)))] = vars[v][i].data();
                for (int d = 0; d < plan_.dual_count; ++d) {
                    buffers[static_cast<std::size_t>(plan_.dual_in_buffer(d))] = in[static_cast<std::size_t>(d)][i].data();
                    buffers[static_cast<std::size_t>(plan_.dual_out_buffer(d))] = out[static_cast<std::size_t>(d)][i].data();
                }
                const std::int64_t blocks = std::clamp<std::int64_t>((n + program_.block - 1) / program_.block, 1, program_.max_grid);
                // As cuLaunchKernel takes them: a pointer to each argument, the buffers, the hyperparameters,
                // the step count and the weight's numbers.
                const auto constants = test_constants(elements_)[i];
                std::copy(constants.begin(), constants.end(), scalars.begin() + 1);
                std::vector<void*> params;
                for (auto& b : buffers) params.push_back(&b);
                for (auto& h : hypers) params.push_back(&h);
                for (auto& x : scalars) params.push_back(&x);
                kernels_.launch_params(KernelNames::step(k, n), {static_cast<unsigned>(blocks), 1, 1}, {program_.block, 1, 1},
                                       params);
            }
            for (const auto& d : plan_.segments[k].duals) {
                std::vector<const T*> ins;
                std::vector<T*> outs;
                for (std::size_t i = 0; i < elements_.size(); ++i) {
                    ins.push_back(in[static_cast<std::size_t>(d.dual)][i].data());
                    outs.push_back(out[static_cast<std::size_t>(d.dual)][i].data());
                }
                stand_in<T>(elements_, ins.data(), outs.data());
            }
        }
    }

    std::vector<std::vector<std::vector<T>>> vars, in, out;  // [variable or call][weight], with guards

private:
    const step::StepPlan& plan_;
    std::vector<std::int64_t> elements_;
    const cuda::StepProgram& program_;
    const HostKernels& kernels_;

    std::vector<std::vector<T>> tensors(T value) const {
        std::vector<std::vector<T>> t;
        for (auto n : elements_) {
            t.emplace_back(static_cast<std::size_t>(n + kGuard), value);
            std::fill(t.back().begin() + n, t.back().end(), sentinel<T>());
        }
        return t;
    }
};

// Values of mixed magnitudes, all in f32's range: each element independently 0 or
// +-(1..2) * 10^e with e in {-30, -20, -10, -3, 0, 3, 10, 20, 30}; every sum the steps form
// stays finite. The guard elements hold the sentinel.
template <class T>
std::vector<std::vector<T>> mixed(const std::vector<std::int64_t>& elements, std::mt19937& rng, int scale = 1) {
    // scale 3 divides the exponents by 3 (1e-10 to 1e10), for blocks that square a gradient (Adam):
    // 1e30 squared overflows f32 in any implementation, and where it does depends on the rounding.
    static const int exponents[] = {-30, -20, -10, -3, 0, 3, 10, 20, 30};
    std::uniform_int_distribution<int> pick(0, 9);
    std::uniform_real_distribution<double> mantissa(1.0, 2.0);
    std::vector<std::vector<T>> out;
    for (auto n : elements) {
        std::vector<T> t(static_cast<std::size_t>(n + kGuard), sentinel<T>());
        for (std::int64_t j = 0; j < n; ++j) {
            int e = pick(rng);
            double v = e == 9 ? 0.0 : mantissa(rng) * std::pow(10.0, exponents[e] / scale) * (pick(rng) % 2 ? -1 : 1);
            t[static_cast<std::size_t>(j)] = static_cast<T>(static_cast<float>(v));  // the same values in f32 and f64
        }
        out.push_back(std::move(t));
    }
    return out;
}

// How two results of one element may differ: tolerance x the largest magnitude any of that
// element's tensors has had so far (in this step or an earlier one). Every step is linear in
// the tensors, with coefficients below a few, so its rounding error is bounded by that
// magnitude times a few units in the last place, whatever cancels; and a state variable
// carries the error of the steps before, when its magnitude may have been larger. The two
// backends differ in rounding only (the JIT may contract a * b + c into an FMA).
struct Scale {
    std::vector<std::vector<double>> of;  // [weight][element]
    explicit Scale(const std::vector<std::int64_t>& elements) {
        for (auto n : elements) of.emplace_back(static_cast<std::size_t>(n), 0.0);
    }
    template <class T>
    void add(const std::vector<std::vector<T>>& tensors) {
        for (std::size_t i = 0; i < of.size(); ++i)
            for (std::size_t j = 0; j < of[i].size(); ++j) of[i][j] = std::max(of[i][j], std::fabs(static_cast<double>(tensors[i][j])));
    }
};

// Mismatches of `got` against `want` (weight i's first elements[i] values), with the first few
// described in *report; the guards of `got` must hold the sentinel.
template <class T, class U>
std::size_t mismatches(const std::string& what, const std::vector<std::vector<T>>& got, const std::vector<const U*>& want,
                       const Scale& scale, double tolerance, std::string* report, double* worst) {
    std::size_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const std::size_t n = scale.of[i].size();
        for (std::size_t j = 0; j < got[i].size(); ++j) {
            if (j >= n) {
                if (got[i][j] != sentinel<T>()) {
                    ++bad;
                    *report += what + ": weight " + std::to_string(i) + " written past its end at " + std::to_string(j) + "\n";
                }
                continue;
            }
            const double g = static_cast<double>(got[i][j]), w = static_cast<double>(want[i][j]);
            const double err = std::fabs(g - w), allowed = tolerance * scale.of[i][j];
            if (std::isfinite(err) && scale.of[i][j] > 0) *worst = std::max(*worst, err / scale.of[i][j]);
            if (std::isfinite(w) && std::isfinite(g) && err <= allowed) continue;
            if (++bad <= 5) {
                std::ostringstream s;
                s.precision(17);
                s << what << ": weight " << i << " element " << j << ": " << g << " against " << w << " (scale " << scale.of[i][j]
                  << ")\n";
                *report += s.str();
            }
        }
    }
    return bad;
}

template <class T>
std::vector<const T*> pointers(const std::vector<std::vector<T>>& t) {
    std::vector<const T*> out;
    for (const auto& x : t) out.push_back(x.data());
    return out;
}

// The hyperparameters of step s (0, 1, 2): the defaults, then the first halved, then the last
// set to 0.5 as well: a schedule changes them between steps.
std::vector<double> hypers_at(const step::StepPlan& plan, int s) {
    std::vector<double> h;
    for (const auto& x : plan.hypers) h.push_back(x.value);
    if (s >= 1 && !h.empty()) h.front() *= 0.5;
    if (s >= 2 && h.size() > 1) h.back() = 0.5;
    return h;
}

// Three steps of the host build of `program` against cpu::Stepper, from the same weights and
// gradients; W and every variable compared after each step.
template <class T>
void compare_with_cpu(const Built& b, const cuda::StepProgram& program, const HostKernels& kernels, double tolerance,
                      const std::string& what) {
    const ElementType type = std::is_same_v<T, float> ? ElementType::F32 : ElementType::F64;
    const auto& elements = b.elements;
    cpu::Stepper<T> cpu(b.plan, elements, test_constants(elements), codegen_llvm_step(b.plan, elements, type),
                        [&elements](const T* const* in, T* const* out) { stand_in<T>(elements, in, out); });
    HostStepper<T> host(b.plan, elements, program, kernels);
    std::mt19937 rng(1234);
    auto weights = mixed<T>(elements, rng, b.scale);
    auto cpu_weights = weights;
    double worst = 0;
    Scale scale(elements);
    for (int s = 0; s < 3; ++s) {
        auto grads = mixed<T>(elements, rng, b.scale);
        const std::vector<double> hypers = hypers_at(b.plan, s);
        scale.add(weights);
        scale.add(grads);
        for (const auto& v : host.vars) scale.add(v);

        std::vector<T*> w;
        for (auto& x : cpu_weights) w.push_back(x.data());
        cpu.step(w.data(), pointers(grads).data(), hypers.data(), s + 1);
        host.step(weights, grads, hypers, s + 1);

        scale.add(weights);
        for (const auto& v : host.vars) scale.add(v);
        for (const auto& d : host.in) scale.add(d);
        std::string report;
        std::size_t bad = mismatches("W", weights, pointers(cpu_weights), scale, tolerance, &report, &worst);
        for (std::size_t v = 0; v < b.plan.vars.size(); ++v) {
            std::vector<const T*> want;
            for (std::size_t i = 0; i < elements.size(); ++i) want.push_back(cpu.var(static_cast<int>(v), i));
            bad += mismatches(b.plan.vars[v].name, host.vars[v], want, scale, tolerance, &report, &worst);
        }
        INFO(what << ", step " << s + 1 << ":\n" << report);
        CHECK(bad == 0);
    }
    INFO(what << ": largest difference " << worst << " of the element's scale");
    CHECK(worst <= tolerance);
}

// Nesterov written out in double: m = beta m + grad; W -= lr * 0.5 (grad + beta m).
template <class T>
void compare_nesterov_with_double(const Built& b, const cuda::StepProgram& program, const HostKernels& kernels,
                                  double tolerance, const std::string& what) {
    REQUIRE(b.plan.optimizer == "nesterov");
    REQUIRE(b.plan.hypers.size() == 2);
    const auto& elements = b.elements;
    HostStepper<T> host(b.plan, elements, program, kernels);
    std::mt19937 rng(99);
    auto weights = mixed<T>(elements, rng);
    std::vector<std::vector<double>> W, m;
    for (std::size_t i = 0; i < elements.size(); ++i) {
        W.emplace_back(weights[i].begin(), weights[i].begin() + elements[i]);
        m.emplace_back(static_cast<std::size_t>(elements[i]), 0.0);
    }
    double worst = 0;
    Scale scale(elements);
    for (int s = 0; s < 3; ++s) {
        auto grads = mixed<T>(elements, rng);
        const std::vector<double> hypers = hypers_at(b.plan, s);
        const double lr = hypers[0], beta = hypers[1];
        scale.add(weights);
        scale.add(grads);
        scale.add(m);
        for (std::size_t i = 0; i < elements.size(); ++i)
            for (std::size_t j = 0; j < W[i].size(); ++j) {
                const double g = static_cast<double>(grads[i][j]);
                m[i][j] = beta * m[i][j] + g;
                W[i][j] -= lr * (0.5 * (g + beta * m[i][j]));
            }
        host.step(weights, grads, hypers, s + 1);
        scale.add(W);
        scale.add(m);
        std::string report;
        std::size_t bad = mismatches("W", weights, pointers(W), scale, tolerance, &report, &worst);
        bad += mismatches("m", host.vars[0], pointers(m), scale, tolerance, &report, &worst);
        INFO(what << ", step " << s + 1 << ":\n" << report);
        CHECK(bad == 0);
    }
    INFO(what << ": largest difference " << worst << " of the element's scale");
    CHECK(worst <= tolerance);
}

}  // namespace

TEST_CASE("step-cuda: a kernel per segment and weight size, every signature the same", "[step-cuda]") {
    Built b = build(optimizers()[1]);  // nesterov: m = beta m + grad, in0 = grad + beta m; W -= lr out0
    REQUIRE(b.plan.segments.size() == 2);
    REQUIRE(b.plan.buffer_count() == 5);
    cuda::StepProgram p = cuda::codegen_cuda_step(b.plan, b.elements, options(ElementType::F32, 128, 7));
    INFO(p.source);
    CHECK(p.optimizer == "nesterov");
    CHECK(p.type == ElementType::F32);
    CHECK(p.block == 128);
    CHECK(p.max_grid == 7);
    CHECK(p.kernels == std::vector<std::string>{"step_s0_n80", "step_s0_n128", "step_s0_n256", "step_s1_n80", "step_s1_n128",
                                                "step_s1_n256"});
    const std::string params =
        "(float* __restrict__ b0, const float* __restrict__ b1, float* __restrict__ b2, float* __restrict__ b3, "
        "const float* __restrict__ b4, double h0, double h1, double st, double k0, double k1, double k2, double k3) {";
    std::size_t at = 0;
    for (const auto& k : p.kernels) {
        std::string signature = "extern \"C\" __global__ void __launch_bounds__(128) " + k + params;
        INFO(signature);
        std::size_t where = p.source.find(signature);
        REQUIRE(where != std::string::npos);
        CHECK(where > at);  // in order
        CHECK(p.source.find(signature, where + 1) == std::string::npos);
        at = where;
    }
    // A grid-stride loop over n; beta in double, narrowed once; stores after the statements.
    CHECK_THAT(p.source, Contains("for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < 256; i += gridDim.x * blockDim.x) {"));
    auto count = [&](const std::string& text) {
        std::size_t found = 0;
        for (std::size_t pos = p.source.find(text); pos != std::string::npos; pos = p.source.find(text, pos + 1)) ++found;
        return found;
    };
    CHECK(count("    const float h1f = (float)h1;\n") == 3);  // once in each kernel of segment 0, which uses beta twice
    CHECK(count("    const float h0f = (float)h0;\n") == 3);  // once in each kernel of segment 1
    CHECK(count("h1f * ") == 6);
    CHECK_THAT(p.source, Contains("b3[i] = "));
    CHECK_THAT(p.source, Contains("//   dualizer input 0 = (grad + (beta * m))"));
    CHECK(p.source.find("#include") == std::string::npos);

    cuda::StepProgram d = cuda::codegen_cuda_step(b.plan, b.elements, options(ElementType::F64));
    CHECK(d.type == ElementType::F64);
    CHECK(d.block == 256);
    CHECK(d.max_grid == 1024);
    CHECK_THAT(d.source, Contains("extern \"C\" __global__ void __launch_bounds__(256) step_s1_n80(double* __restrict__ b0, "
                                  "const double* __restrict__ b1, double* __restrict__ b2, double* __restrict__ b3, "
                                  "const double* __restrict__ b4, double h0, double h1, double st, double k0, double k1, double k2, double k3) {"));
    CHECK(d.source.find("float") == std::string::npos);

    // No weights, no kernels; bf16 storage has no step.
    CHECK(cuda::codegen_cuda_step(b.plan, {}, options(ElementType::F32)).kernels.empty());
    cuda::CudaOptions bf16 = options(ElementType::F32);
    bf16.storage = cuda::Storage::BF16;
    CHECK_THROWS_AS(cuda::codegen_cuda_step(b.plan, b.elements, bf16), cuda::Unsupported);
}

TEST_CASE("step-cuda: numbers in double before the loop, literals written exactly", "[step-cuda]") {
    Built b = build(optimizers()[3]);  // powers
    cuda::StepProgram f = cuda::codegen_cuda_step(b.plan, b.elements, options(ElementType::F32));
    INFO(f.source);
    CHECK_THAT(f.source, Contains("pow(h1, h2)"));   // beta ^ t, in double
    CHECK_THAT(f.source, Contains("pow(h0, 2.0)"));  // lr ^ 2
    CHECK_THAT(f.source, Contains("1.0 - h1"));      // 1 - beta, in double
    CHECK_THAT(f.source, Contains("const double s"));
    CHECK_THAT(f.source, Contains("const float c"));  // a scalar narrowed once for the tensors
    CHECK_THAT(f.source, Contains(" / 2.0f;"));       // v / 2: a float literal
    CHECK(b.plan.hypers.back().value == Approx(1e-3));  // eps = 10 ^ -3, passed by value
    Built t = build(optimizers()[5]);  // temporary: m = t + 0.5 * grad
    cuda::StepProgram tf = cuda::codegen_cuda_step(t.plan, t.elements, options(ElementType::F32));
    CHECK_THAT(tf.source, Contains("0.5f * v1"));  // a number times a tensor: a float literal
    cuda::StepProgram td = cuda::codegen_cuda_step(t.plan, t.elements, options(ElementType::F64));
    CHECK_THAT(td.source, Contains("0.5 * v1"));
}

TEST_CASE("step-cuda: the host build gives the CPU backend's step, f32 and f64, over three steps", "[step-cuda]") {
    struct Run {
        std::string what;
        std::size_t optimizer;
        ElementType type;
        cuda::StepProgram program;
        std::future<std::unique_ptr<HostBuild>> build;
    };
    std::vector<Built> built;
    for (const auto& o : optimizers()) built.push_back(build(o));
    std::vector<Run> runs;
    for (std::size_t o = 0; o < built.size(); ++o)
        for (auto type : {ElementType::F32, ElementType::F64}) {
            // f32 on a small grid, so that each thread's loop runs several times; f64 as a runtime would.
            auto co = type == ElementType::F32 ? options(type, 32, 3) : options(type);
            Run r{optimizers()[o].name + ", " + to_string(type), o, type, cuda::codegen_cuda_step(built[o].plan, built[o].elements, co), {}};
            runs.push_back(std::move(r));
        }
    // The host compilations, two at a time (each a c++ process).
    std::size_t next = 0;
    auto start_one = [&] {
        if (next < runs.size()) {
            Run& r = runs[next++];
            r.build = std::async(std::launch::async, [&r] { return build_for_host(r.program.source, r.program.kernels); });
        }
    };
    start_one();
    for (std::size_t i = 0; i < runs.size(); ++i) {
        start_one();
        Run& r = runs[i];
        auto host = r.build.get();
        HostKernels kernels(*host, r.program.kernels);
        const Built& b = built[r.optimizer];
        if (r.type == ElementType::F32) {
            compare_with_cpu<float>(b, r.program, kernels, 1e-6, r.what);
            if (b.plan.optimizer == "nesterov") compare_nesterov_with_double<float>(b, r.program, kernels, 1e-6, r.what + " (by hand)");
        } else {
            compare_with_cpu<double>(b, r.program, kernels, 1e-13, r.what);
            if (b.plan.optimizer == "nesterov") compare_nesterov_with_double<double>(b, r.program, kernels, 1e-13, r.what + " (by hand)");
        }
    }
}

#ifdef MODC_WITH_CUDA

TEST_CASE("step-cuda: every optimizer's kernels compile with NVRTC for sm_80 and sm_90", "[step-cuda][nvrtc]") {
    std::string why;
    const cuda::Nvrtc* nvrtc = cuda::load_nvrtc(&why);
    if (!nvrtc) {
        WARN("NVRTC is not available here, so the step kernels were not compiled: " << why);
        return;
    }
    cuda::DiskCache cache(std::filesystem::path(MODC_TEST_CACHE_DIR) / "nvrtc");
    for (const auto& o : optimizers()) {
        Built b = build(o);
        for (auto type : {ElementType::F32, ElementType::F64}) {
            cuda::StepProgram p = cuda::codegen_cuda_step(b.plan, b.elements, options(type));
            auto compile = [&](const std::string& arch) {
                cuda::CompileRequest request;
                request.source = p.source;
                request.name = o.name + "_step.cu";
                request.arch = arch;
                return cuda::compile(*nvrtc, request, &cache);
            };
            auto sm80 = std::async(std::launch::async, compile, "sm_80");
            cuda::Compiled c90 = compile("sm_90");
            cuda::Compiled c80 = sm80.get();
            for (const auto* c : {&c80, &c90}) {
                INFO(o.name << ", " << to_string(type) << ":\n" << c->log << "\n" << p.source);
                REQUIRE(c->ok);
                CHECK(!c->ptx.empty());
                CHECK(!c->cubin.empty());
                CHECK(c->log.find("warning") == std::string::npos);
                std::set<std::string> reported;
                for (const auto& r : cuda::parse_ptxas_info(c->log)) {
                    CHECK(r.spill_stores == 0);
                    CHECK(r.spill_loads == 0);
                    reported.insert(r.name);
                }
                CHECK(reported == std::set<std::string>(p.kernels.begin(), p.kernels.end()));
            }
        }
    }
}

#endif
