// `modc dualize --backend cuda-sim` (issue 14): the GPU program, run by the simulator on the
// host, agrees with the CPU backend's float64 result within the schedule's own error, on
// gradients whose singular values decay as 1/i and 1/i^2, for every matrix shape class of
// examples/gpt.mod: square d x d (q, k, v, o), wide d x 4d (mlp.down, Gram Newton-Schulz), tall
// 4d x d (mlp.up, transposed), and the tall vocab x d of the head and the embedding; with Gram
// Newton-Schulz and without it (--no-gram), in f32 and f64.
//
// The exact answer is the CPU's f64 `--schedule svd` (the polar factor, LAPACK). The schedule's
// own error, per weight, is how far the CPU's f64 run of the same schedule is from it; the
// simulator's run may be that far, plus a margin for its own arithmetic (f32: 2e-3 of the
// update's norm; f64: 1e-9); and it is checked against that CPU run directly (f32: 6e-3).
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "compiler/analysis/compilation.hpp"
#include "compiler/backend/schedule.hpp"
#include "library/modc.hpp"
#include "support/rational.hpp"
#include "runtime/tensor_io.hpp"
#include "spectra.hpp"
#include "support.hpp"

#ifdef MODC_WITH_CUDA

using namespace modc;
using test::quote;

namespace {

const std::map<std::string, std::string> kSets{{"vocab", "128"}, {"d", "32"}, {"heads", "2"}, {"L", "1"}};

std::string gpt() { return std::string(MODC_SOURCE_DIR) + "/examples/gpt.mod"; }

// The gradients of every weight, as f64 and f32 safetensors, each matrix given the spectrum.
void write_gradients(const std::vector<WeightInfo>& weights, test::Spectrum spectrum, const test::TempDir& dir) {
    std::mt19937 rng(static_cast<unsigned>(spectrum) + 17);
    std::normal_distribution<double> normal;
    std::vector<rt::Tensor> f64, f32;
    for (const auto& w : weights) {
        std::vector<double> g(static_cast<std::size_t>(w.elements()));
        for (auto& v : g) v = normal(rng);
        test::give_spectrum(g, w.shape.front(), w.elements() / w.shape.front(), spectrum, rng);
        f64.push_back(rt::Tensor::from(w.path, w.shape, g));
        f32.push_back(rt::convert(f64.back(), rt::DType::F32));
    }
    rt::write_tensors(dir / "f64.safetensors", f64);
    rt::write_tensors(dir / "f32.safetensors", f32);
}

// `modc dualize` of the gradients in `dtype` with the extra arguments; the updates, widened to f64, by name.
std::map<std::string, std::vector<double>> dualize(const test::TempDir& dir, const std::string& dtype, const std::string& extra) {
    std::string args = "dualize " + quote(gpt()) + " --in " + quote(dir / (dtype + ".safetensors")) + " --out " +
                       quote(dir / "out.safetensors") + " " + extra;
    for (const auto& [k, v] : kSets) args += " --set " + k + "=" + v;
    auto run = test::run_modc(args, "MODC_CACHE_DIR=" + quote(MODC_TEST_CACHE_DIR));
    INFO("modc " << args << "\n" << run.err);
    REQUIRE(run.status == 0);
    std::map<std::string, std::vector<double>> out;
    for (auto& t : rt::read_tensors(dir / "out.safetensors")) {
        rt::Tensor wide = rt::convert(t, rt::DType::F64);
        auto v = wide.as<double>();
        out[t.name].assign(v.begin(), v.end());
    }
    return out;
}

double distance(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s);
}

}  // namespace

// The simulator is only worth its name if it runs the program the GPU would get: the kernel
// plan of Backend::CudaSim must be the CUDA backend's, Gram restarts of tf32 and bf16 included
// (it once got the CPU's, so its bf16 runs had no Gram groups and its tf32 Gram groups no
// restarts, which diverged on 1/i^2 gradients where the GPU's would not).
TEST_CASE("the cuda-sim backend compiles the CUDA backend's kernel plan in every precision", "[cuda][sim]") {
    ElaborateOptions eo;
    for (const auto& [k, v] : kSets) eo.overrides[k] = *parse_decimal(v);
    auto compilation = compile_source(gpt(), test::read(gpt()), eo);
    REQUIRE_FALSE(compilation->diags.has_errors());
    const DualPlan& plan = compilation->plans.front();
    for (auto [precision, lowered] : {std::pair{Precision::F32, kp::Precision::F32}, std::pair{Precision::TF32, kp::Precision::TF32},
                                      std::pair{Precision::BF16, kp::Precision::BF16}}) {
        CompileOptions options;
        options.set = kSets;
        options.backend = Backend::CudaSim;
        options.precision = precision;
        const kp::KernelPlan gpu = kp::lower(plan, *kp::find_schedule(options.schedule), {},
                                             {.gram = true, .precision = lowered, .gram_restart_every = true});
        INFO(to_string(precision) << ": the CUDA backend's plan\n" << kp::print(gpu));
        REQUIRE(std::any_of(gpu.groups.begin(), gpu.groups.end(), [](const kp::Group& g) { return g.gram; }));
        CHECK(compile_file(gpt(), options).flops() == kp::flops(gpu));
    }
}

TEST_CASE("modc dualize --backend cuda-sim agrees with the CPU's f64 result within the schedule's own error, on "
          "every matrix shape of gpt.mod",
          "[cuda][sim][cli]") {
    CompileOptions options;
    options.set = kSets;
    const std::vector<WeightInfo> weights = compile_file(gpt(), options).weights();
    std::set<std::vector<std::int64_t>> shapes;
    for (const auto& w : weights) shapes.insert(w.shape);
    REQUIRE(shapes == std::set<std::vector<std::int64_t>>{{32, 32}, {32, 128}, {128, 32}});

    for (auto spectrum : {test::Spectrum::Decay1, test::Spectrum::Decay2}) {
        test::TempDir dir;
        write_gradients(weights, spectrum, dir);
        const auto exact = dualize(dir, "f64", "--schedule svd");
        for (const std::string gram : {"", "--no-gram"}) {
            const auto cpu = dualize(dir, "f64", gram);
            // f32 and f64 GEMMs; and tensor-core GEMMs on f32 storage: bf16 (the GPU's default)
            // and tf32. "dtype" here names the GEMMs' arithmetic.
            for (const std::string dtype : {"f32", "f64", "bf16", "tf32"}) {
                if (dtype == "f64" && !gram.empty()) continue;  // f64 once: the arithmetic is the CPU's
                const bool bf16 = dtype == "bf16", tf32 = dtype == "tf32";
                const auto sim = dualize(dir, bf16 || tf32 ? "f32" : dtype,
                                         gram + " --backend cuda-sim --precision " + (bf16 || tf32 ? dtype : "f32"));
                // bf16 GEMM inputs (8 bits): docs/cuda.md's "Precision" measures up to 0.27 on
                // 1/i^2; tf32 (11 bits) at most 0.038.
                const double margin = bf16 ? 0.3 : tf32 ? 0.04 : dtype == "f32" ? 2e-3 : 1e-9;
                // How far from the CPU's f64 run of the schedule: f32 rounding, which Gram
                // Newton-Schulz meets squared (1/i^2 at d = 32 puts sigma_min at 1/1024).
                const double apart = bf16 ? 0.3 : tf32 ? 0.04 : dtype == "f32" ? 6e-3 : 1e-9;
                for (const auto& w : weights) {
                    const auto& x = exact.at(w.path);
                    const double norm = distance(x, std::vector<double>(x.size(), 0.0));
                    const double own = distance(cpu.at(w.path), x) / norm, err = distance(sim.at(w.path), x) / norm;
                    INFO((spectrum == test::Spectrum::Decay1 ? "1/i" : "1/i^2")
                         << ", " << dtype << " " << gram << ": " << w.path << " [" << w.shape[0] << " x " << w.shape[1]
                         << "]: the schedule's own error " << own << ", the simulator's " << err);
                    CHECK(err <= own + margin);
                    CHECK(distance(sim.at(w.path), cpu.at(w.path)) / norm <= apart);
                }
            }
        }
    }
}

TEST_CASE("the cuda-sim backend without a host C++ compiler: modc says so and exits 1, the API throws BackendUnavailable", "[cuda][sim][cli]") {
    for (const std::string command : {"dualize " + quote(gpt()) + " --in x.safetensors --out y.safetensors", "bench " + quote(gpt())}) {
        auto run = test::run_modc(command + " --backend cuda-sim", "MODC_HOST_CXX=/nonexistent/c++");
        INFO(command << "\n" << run.err);
        CHECK(run.status == 1);
        CHECK(run.out.empty());
        CHECK_THAT(run.err, Catch::Matchers::Contains("the cuda-sim backend cannot run here: MODC_HOST_CXX names no "
                                                      "executable C++ compiler: /nonexistent/c++"));
    }
    ::setenv("MODC_HOST_CXX", "/nonexistent/c++", 1);
    CompileOptions options;
    options.set = kSets;
    options.backend = Backend::CudaSim;
    CHECK_THROWS_AS(compile_file(gpt(), options), BackendUnavailable);
    CHECK_THAT(backend_unavailable(Backend::CudaSim), Catch::Matchers::Contains("MODC_HOST_CXX"));
    ::unsetenv("MODC_HOST_CXX");
    CHECK(backend_unavailable(Backend::CudaSim).empty());
}

#endif
