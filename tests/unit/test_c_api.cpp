// The C API (library/modc.h) of the optimizer and of compiling from text: options with network
// parameters, hyperparameters, state, errors (never an exception), and steps equal to the C++
// API's for the same inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "library/modc.h"
#include "library/modc.hpp"

namespace {

const char* const kText =
    "network n(d = 8) = Linear(4, 16) @ ReLU @ Linear(16, d)\n"
    "optimizer muon(lr = 0.02, beta = 0.95) {\n"
    "    m = beta * m + grad\n"
    "    W -= lr * dualize(m)\n"
    "}\n"
    "optimizer sgd(lr) {\n"
    "    W -= lr * dualize(grad)\n"
    "}\n";

// Takes the message out of *error (freeing it); "" when there is none.
std::string take(char*& error) {
    std::string s = error ? error : "";
    modc_free_string(error);
    error = nullptr;
    return s;
}

// Options for one CPU thread (so that runs are bit for bit repeatable) with `d` set.
struct Options {
    const char* names[1] = {"d"};
    const char* values[1];
    modc_compile_options c{};
    explicit Options(const char* d, modc_dtype dtype = MODC_F32) {
        values[0] = d;
        c.dtype = dtype;
        c.threads = 1;
        c.set_names = names;
        c.set_values = values;
        c.set_count = 1;
    }
};

template <class T>
struct Tensors {
    std::vector<std::vector<T>> data;
    std::vector<T*> ptrs;
    Tensors(const std::vector<std::int64_t>& sizes, std::uint32_t seed, double stddev) {
        std::mt19937 rng(seed);
        std::normal_distribution<double> normal(0.0, stddev);
        for (auto n : sizes) {
            data.emplace_back(static_cast<std::size_t>(n));
            for (auto& x : data.back()) x = static_cast<T>(normal(rng));
        }
        for (auto& d : data) ptrs.push_back(d.data());
    }
    const T* const* in() const { return const_cast<const T* const*>(ptrs.data()); }
    T* const* out() { return ptrs.data(); }
};

std::vector<std::int64_t> sizes(const modc_optimizer* o) {
    std::vector<std::int64_t> r;
    for (std::size_t i = 0; i < modc_optimizer_weight_count(o); ++i) {
        std::int64_t dims[4] = {0, 0, 0, 0};
        std::size_t rank = modc_optimizer_weight_shape(o, i, dims);
        std::int64_t n = 1;
        for (std::size_t k = 0; k < rank; ++k) n *= dims[k];
        r.push_back(n);
    }
    return r;
}

}  // namespace

TEST_CASE("C API: an optimizer compiled from text, with a network parameter set", "[c_api]") {
    Options options("12");
    char* error = nullptr;
    modc_optimizer* o = modc_optimizer_compile_source("net.mod", kText, "muon", &options.c, &error);
    REQUIRE(o);
    CHECK(error == nullptr);
    CHECK(std::string(modc_optimizer_name(o)) == "muon");
    REQUIRE(modc_optimizer_weight_count(o) == 2);
    std::int64_t dims[4] = {0, 0, 0, 0};
    REQUIRE(modc_optimizer_weight_shape(o, 0, dims) == 2);
    CHECK(dims[0] == 16);
    CHECK(dims[1] == 12);  // d = 12, not the default 8
    REQUIRE(modc_optimizer_weight_shape(o, 1, dims) == 2);
    CHECK(dims[0] == 4);
    CHECK(dims[1] == 16);
    CHECK(modc_optimizer_weight_path(o, 0) != nullptr);
    CHECK(modc_optimizer_weight_path(o, 2) == nullptr);
    CHECK(modc_optimizer_weight_shape(o, 2, dims) == 0);
    // Linear(16, 12) in a network of mass 2: t = 1/2, scale t * sqrt(16 / 12).
    CHECK(modc_optimizer_weight_target(o, 0) == Approx(0.5));
    CHECK(modc_optimizer_weight_scale(o, 0) == Approx(0.5 * std::sqrt(16.0 / 12.0)));
    CHECK(std::isnan(modc_optimizer_weight_target(o, 2)));
    CHECK(std::isnan(modc_optimizer_weight_scale(o, 2)));
    CHECK(modc_optimizer_steps(o) == 0);
    modc_optimizer_free(o);

    // The dualizer from the same text, through modc_compile_source.
    modc_dualizer* d = modc_compile_source("net.mod", kText, &options.c, &error);
    REQUIRE(d);
    REQUIRE(modc_weight_count(d) == 2);
    REQUIRE(modc_weight_shape(d, 0, dims) == 2);
    CHECK(dims[1] == 12);
    modc_free(d);
}

TEST_CASE("C API: a block with rules: each weight its rule's state; the step count restored", "[c_api]") {
    // Weight 0 is Linear(16, d) (the first rule: momentum m), weight 1 Linear(4, 16) by path
    // pattern... both are Linear, so the path rule must come first to take one of them.
    const char* text =
        "network n(d = 8) = (Linear(4, 16) as out) @ ReLU @ (Linear(16, d) as in)\n"
        "optimizer ruled(lr = 0.02, beta = 0.9, b2 = 0.99, eps = 1e-8) {\n"
        "    for o* { v = b2 * v + (1 - b2) * grad * grad\n W -= lr * grad / (sqrt(v) + eps) }\n"
        "    for Linear { m = beta * m + grad\n W -= lr * dualize(m) }\n"
        "}\n";
    Options options("12");
    char* error = nullptr;
    modc_optimizer* o = modc_optimizer_compile_source("ruled.mod", text, "ruled", &options.c, &error);
    INFO(take(error));
    REQUIRE(o);
    REQUIRE(modc_optimizer_weight_count(o) == 2);
    const std::size_t out = std::string(modc_optimizer_weight_path(o, 0)) == "out" ? 0 : 1, in = 1 - out;
    CHECK(modc_optimizer_has_state(o, "v", out) == 1);
    CHECK(modc_optimizer_has_state(o, "m", out) == 0);
    CHECK(modc_optimizer_has_state(o, "m", in) == 1);
    CHECK(modc_optimizer_has_state(o, "v", in) == 0);
    CHECK(modc_optimizer_has_state(o, "v", 2) == 0);
    std::vector<float> buffer(16 * 12);
    CHECK(modc_optimizer_read_state(o, "m", out, buffer.data(), &error) != 0);
    CHECK_THAT(take(error), Catch::Contains("runs the rule 'ruled for o*', which has no state 'm'"));
    CHECK(modc_optimizer_set_steps(o, 41, &error) == 0);
    CHECK(modc_optimizer_steps(o) == 41);
    CHECK(modc_optimizer_set_steps(o, -1, &error) != 0);
    CHECK_THAT(take(error), Catch::Contains("cannot be negative"));
    CHECK(modc_optimizer_steps(o) == 41);
    modc_optimizer_free(o);
}

TEST_CASE("C API: compile errors come back as messages", "[c_api]") {
    char* error = nullptr;
    // Several optimizers and none chosen.
    CHECK(modc_optimizer_compile_source("net.mod", kText, nullptr, nullptr, &error) == nullptr);
    CHECK(take(error).find("several optimizers (muon, sgd)") != std::string::npos);
    // A misspelt optimizer.
    CHECK(modc_optimizer_compile_source("net.mod", kText, "muno", nullptr, &error) == nullptr);
    CHECK(take(error).find("did you mean 'muon'?") != std::string::npos);
    // A parameter the network lacks, and a value that is no number.
    Options unknown("8");
    unknown.names[0] = "width";
    CHECK(modc_optimizer_compile_source("net.mod", kText, "muon", &unknown.c, &error) == nullptr);
    CHECK(take(error).find("width") != std::string::npos);
    Options bad("eight");
    CHECK(modc_compile_source("net.mod", kText, &bad.c, &error) == nullptr);
    CHECK(take(error).find("parameter d must be a number, got 'eight'") != std::string::npos);
    // set_count without the arrays.
    modc_compile_options broken{};
    broken.set_count = 1;
    CHECK(modc_compile_source("net.mod", kText, &broken, &error) == nullptr);
    CHECK(take(error).find("set_names or set_values is NULL") != std::string::npos);
    // bf16 weights are refused; text with a syntax error reports its location.
    modc_compile_options bf16{};
    bf16.dtype = MODC_BF16;
    CHECK(modc_optimizer_compile_source("net.mod", kText, "muon", &bf16, &error) == nullptr);
    CHECK(take(error).find("bf16") != std::string::npos);
    CHECK(modc_compile_source("broken.mod", "network n = Linear(4, 4) @", nullptr, &error) == nullptr);
    CHECK(take(error).find("broken.mod:1:") != std::string::npos);
    CHECK(modc_optimizer_compile_file("/nonexistent/x.mod", nullptr, nullptr, &error) == nullptr);
    CHECK(!take(error).empty());
    CHECK(modc_optimizer_compile_source("net.mod", nullptr, "muon", nullptr, &error) == nullptr);
    CHECK(take(error) == "no text given");
    // error may be NULL.
    CHECK(modc_optimizer_compile_source("net.mod", kText, "muno", nullptr, nullptr) == nullptr);
}

TEST_CASE("C API: hyperparameters", "[c_api]") {
    char* error = nullptr;
    modc_optimizer* o = modc_optimizer_compile_source("net.mod", kText, "muon", nullptr, &error);
    REQUIRE(o);
    REQUIRE(modc_optimizer_hyper_count(o) == 2);
    CHECK(std::string(modc_optimizer_hyper_name(o, 0)) == "lr");
    CHECK(std::string(modc_optimizer_hyper_name(o, 1)) == "beta");
    CHECK(modc_optimizer_hyper_name(o, 2) == nullptr);

    double v = 0;
    REQUIRE(modc_optimizer_get_hyper(o, "lr", &v, &error) == 0);
    CHECK(v == Approx(0.02));
    REQUIRE(modc_optimizer_set_hyper(o, "lr", 0.125, &error) == 0);
    REQUIRE(modc_optimizer_get_hyper(o, "lr", &v, &error) == 0);
    CHECK(v == 0.125);

    CHECK(modc_optimizer_get_hyper(o, "lrr", &v, &error) == -1);
    CHECK(take(error) == "optimizer 'muon' has no hyperparameter 'lrr'; did you mean 'lr'?");
    CHECK(modc_optimizer_set_hyper(o, "bta", 0.5, &error) == -1);
    CHECK(take(error).find("did you mean 'beta'?") != std::string::npos);
    CHECK(modc_optimizer_get_hyper(o, nullptr, &v, &error) == -1);
    CHECK(take(error).find("NULL") != std::string::npos);
    CHECK(modc_optimizer_set_hyper(o, "nope", 1.0, nullptr) == -1);  // error may be NULL
    CHECK(v == 0.125);
    modc_optimizer_free(o);

    // A hyperparameter without a default has no value until set, and a step needs one.
    o = modc_optimizer_compile_source("net.mod", kText, "sgd", nullptr, &error);
    REQUIRE(o);
    CHECK(modc_optimizer_state_count(o) == 0);
    CHECK(modc_optimizer_get_hyper(o, "lr", &v, &error) == -1);
    CHECK(take(error).find("no value") != std::string::npos);
    Tensors<float> w(sizes(o), 1, 0.1), g(sizes(o), 2, 1.0);
    CHECK(modc_optimizer_step_f32(o, w.out(), g.in(), &error) == -1);
    CHECK(take(error).find("hyperparameter 'lr' of optimizer 'sgd' has no default") != std::string::npos);
    REQUIRE(modc_optimizer_set_hyper(o, "lr", 0.01, &error) == 0);
    CHECK(modc_optimizer_step_f32(o, w.out(), g.in(), &error) == 0);
    CHECK(modc_optimizer_steps(o) == 1);
    modc_optimizer_free(o);
}

TEST_CASE("C API: state read, write, and errors", "[c_api]") {
    char* error = nullptr;
    Options options("8");
    modc_optimizer* o = modc_optimizer_compile_source("net.mod", kText, "muon", &options.c, &error);
    REQUIRE(o);
    REQUIRE(modc_optimizer_state_count(o) == 1);
    CHECK(std::string(modc_optimizer_state_name(o, 0)) == "m");
    CHECK(modc_optimizer_state_name(o, 1) == nullptr);
    auto n = sizes(o);

    // Zero before the first step.
    std::vector<float> m(static_cast<std::size_t>(n[0]), 1.0f);
    REQUIRE(modc_optimizer_read_state(o, "m", 0, m.data(), &error) == 0);
    for (float x : m) CHECK(x == 0.0f);

    // A round trip, and the other weight untouched.
    Tensors<float> values(n, 3, 1.0);
    REQUIRE(modc_optimizer_write_state(o, "m", 0, values.data[0].data(), &error) == 0);
    REQUIRE(modc_optimizer_read_state(o, "m", 0, m.data(), &error) == 0);
    CHECK(m == values.data[0]);
    std::vector<float> m1(static_cast<std::size_t>(n[1]), 1.0f);
    REQUIRE(modc_optimizer_read_state(o, "m", 1, m1.data(), &error) == 0);
    for (float x : m1) CHECK(x == 0.0f);

    // After one step from zero, m = grad; zero_state clears it again.
    REQUIRE(modc_optimizer_zero_state(o, &error) == 0);
    Tensors<float> w(n, 4, 0.1), g(n, 5, 1.0);
    REQUIRE(modc_optimizer_step_f32(o, w.out(), g.in(), &error) == 0);
    REQUIRE(modc_optimizer_read_state(o, "m", 1, m1.data(), &error) == 0);
    CHECK(m1 == g.data[1]);
    REQUIRE(modc_optimizer_zero_state(o, &error) == 0);
    REQUIRE(modc_optimizer_read_state(o, "m", 1, m1.data(), &error) == 0);
    for (float x : m1) CHECK(x == 0.0f);

    // Errors: an unknown name (with a hint), a weight out of range, NULL data.
    CHECK(modc_optimizer_read_state(o, "mm", 0, m.data(), &error) == -1);
    CHECK(take(error) == "optimizer 'muon' has no state 'mm'; did you mean 'm'?");
    CHECK(modc_optimizer_write_state(o, "m", 2, m.data(), &error) == -1);
    CHECK(take(error).find("weight 2 is out of range") != std::string::npos);
    CHECK(modc_optimizer_read_state(o, "m", 0, nullptr, &error) == -1);
    CHECK(take(error).find("NULL") != std::string::npos);
    modc_optimizer_free(o);

    // f64: the state is double.
    Options f64("8", MODC_F64);
    o = modc_optimizer_compile_source("net.mod", kText, "muon", &f64.c, &error);
    REQUIRE(o);
    Tensors<double> wd(n, 6, 0.1), gd(n, 7, 1.0), md(n, 8, 1.0);
    REQUIRE(modc_optimizer_step_f64(o, wd.out(), gd.in(), &error) == 0);
    REQUIRE(modc_optimizer_read_state(o, "m", 0, md.data[0].data(), &error) == 0);
    CHECK(md.data[0] == gd.data[0]);
    modc_optimizer_free(o);
}

TEST_CASE("C API: a step in the wrong dtype, or with NULL pointers, is an error", "[c_api]") {
    char* error = nullptr;
    modc_optimizer* o = modc_optimizer_compile_source("net.mod", kText, "muon", nullptr, &error);
    REQUIRE(o);
    auto n = sizes(o);
    Tensors<double> wd(n, 1, 0.1), gd(n, 2, 1.0);
    auto before = wd.data;
    CHECK(modc_optimizer_step_f64(o, wd.out(), gd.in(), &error) == -1);
    CHECK(take(error) == "this optimizer was compiled for f32 (float) tensors");
    CHECK(wd.data == before);
    CHECK(modc_optimizer_steps(o) == 0);

    Tensors<float> w(n, 1, 0.1), g(n, 2, 1.0);
    CHECK(modc_optimizer_step_f32(o, nullptr, g.in(), &error) == -1);
    CHECK(take(error) == "weights is NULL");
    std::vector<const float*> holes = {g.in()[0], nullptr};
    CHECK(modc_optimizer_step_f32(o, w.out(), holes.data(), &error) == -1);
    CHECK(take(error) == "weights[1] or grads[1] is NULL");
    CHECK(modc_optimizer_steps(o) == 0);
    modc_optimizer_free(o);
}

TEST_CASE("C API: steps equal the C++ API's for the same inputs", "[c_api]") {
    for (modc_dtype dtype : {MODC_F32, MODC_F64}) {
        DYNAMIC_SECTION((dtype == MODC_F32 ? "f32" : "f64")) {
            char* error = nullptr;
            Options options("12", dtype);
            modc_optimizer* o = modc_optimizer_compile_source("net.mod", kText, "muon", &options.c, &error);
            REQUIRE(o);

            modc::OptimizerOptions cpp;
            cpp.optimizer = "muon";
            cpp.set["d"] = "12";
            cpp.threads = 1;
            cpp.dtype = dtype == MODC_F32 ? modc::DType::F32 : modc::DType::F64;
            modc::Optimizer opt = modc::compile_optimizer_text("net.mod", kText, cpp);
            REQUIRE(opt.weights().size() == modc_optimizer_weight_count(o));

            auto n = sizes(o);
            auto run = [&](auto zero) {
                using T = decltype(zero);
                Tensors<T> a(n, 11, 0.1), b(n, 11, 0.1);
                for (std::uint32_t s = 0; s < 3; ++s) {
                    Tensors<T> g(n, 100 + s, 1.0);
                    double lr = 0.02 * (3 - s);
                    REQUIRE(modc_optimizer_set_hyper(o, "lr", lr, &error) == 0);
                    opt.set_hyperparameter("lr", lr);
                    int rc = 0;
                    if constexpr (std::is_same_v<T, float>)
                        rc = modc_optimizer_step_f32(o, a.out(), g.in(), &error);
                    else
                        rc = modc_optimizer_step_f64(o, a.out(), g.in(), &error);
                    INFO(take(error));
                    REQUIRE(rc == 0);
                    opt.step(b.out(), g.in());
                }
                Tensors<T> init(n, 11, 0.1);
                for (std::size_t i = 0; i < n.size(); ++i) {
                    CHECK(a.data[i] == b.data[i]);
                    CHECK(a.data[i] != init.data[i]);
                    std::vector<T> sa(a.data[i].size()), sb(a.data[i].size());
                    REQUIRE(modc_optimizer_read_state(o, "m", i, sa.data(), &error) == 0);
                    opt.read_state("m", i, sb.data());
                    CHECK(sa == sb);
                }
            };
            if (dtype == MODC_F32)
                run(0.0f);
            else
                run(0.0);
            CHECK(modc_optimizer_steps(o) == 3);
            CHECK(opt.steps() == 3);
            modc_optimizer_free(o);
        }
    }
}
