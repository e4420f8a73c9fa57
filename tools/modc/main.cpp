// The `modc` command-line tool. It only wires the stages together and prints what is asked.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "tools/modc/bench.hpp"
#include "tools/modc/dualize.hpp"
#include "tools/modc/step.hpp"
#include "compiler/analysis/lower_step.hpp"
#include "compiler/backend/codegen_cuda.hpp"
#include "compiler/backend/codegen_cuda_step.hpp"
#include "program/cuda_cost.hpp"
#include "compiler/backend/codegen_llvm.hpp"
#include "compiler/analysis/explain.hpp"
#include "compiler/backend/schedule.hpp"
#include "library/compile.hpp"
#include "library/modc.hpp"
#include "runtime/tensor_io.hpp"
#include "compiler/analysis/compilation.hpp"
#include "support/large_stack.hpp"
#include "compiler/frontend/print.hpp"
#include "support/suggest.hpp"
#include "version.hpp"
#ifdef MODC_WITH_CUDA
#include "runtime/cuda/cache.hpp"
#include "runtime/cuda/nvrtc.hpp"
#endif

namespace {

using namespace modc;

struct Options {
    std::string command;
    std::string file;
    std::string network;
    std::vector<std::string> sets;
    std::string emit = "ir";
    std::string output;
    std::string why;
    std::vector<std::string> schedules;
    std::string input;
    std::string backend = "cpu";
    std::string dtype = "f32";
    std::string precision;            // empty: the backend's default
    std::string arch = "sm_90";
    std::string optimizer;            // step, emit --emit step*
    std::string weights, grads, state, out_state;  // step
    std::vector<std::string> hypers;  // step
    long long step = 1;
    int ranks = 1;                    // partition
    BenchOptions bench;
    bool json = false;
    bool color = false;
    bool no_gram = false;
    unsigned threads = 0;
    int device = 0;            // dualize, bench, step: the GPU's index (cuda, cuda-sim)
    std::string memory_limit;  // dualize, bench, step: BYTES, or N with K, M, G or T
};

// Writes all of `text` to `path` or nothing: a temporary file renamed into place.
bool write_atomically(const std::string& path, const std::string& text) {
    if (path.empty() || path == "-") {
        std::cout << text;
        return static_cast<bool>(std::cout.flush());
    }
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary);
        out << text;
        if (!out.flush()) {
            std::remove(tmp.c_str());
            return false;
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) std::remove(tmp.c_str());
    return !ec;
}

int fail(const std::string& message) {
    std::cerr << "modc: error: " << message << '\n';
    return 1;
}

bool parse_sets(const std::vector<std::string>& sets, std::map<std::string, Rational>& out) {
    for (const auto& s : sets) {
        auto eq = s.find('=');
        auto value = eq == std::string::npos ? std::nullopt : parse_decimal(s.substr(eq + 1));
        std::string sign = eq != std::string::npos && eq + 1 < s.size() && s[eq + 1] == '-' ? "-" : "";
        if (!sign.empty()) value = parse_decimal(s.substr(eq + 2));
        if (eq == std::string::npos || eq == 0 || !value) {
            fail("--set expects NAME=NUMBER, got '" + s + "'");
            return false;
        }
        out[s.substr(0, eq)] = sign.empty() ? *value : -*value;
    }
    return true;
}

// The network a command works on: --network NAME, or the only one in the file.
const ir::Network* pick_network(const Compilation& c, const std::string& wanted, std::string& error) {
    std::vector<std::string> names;
    for (const auto& d : c.file.definitions)
        if (d.is_network) names.push_back(d.name);
    if (!wanted.empty()) {
        for (const auto& n : c.networks)
            if (n.name == wanted) return &n;
        std::string hint = closest_match(wanted, names);
        error = "no network named '" + wanted + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?");
        return nullptr;
    }
    if (names.empty()) {
        error = "the file defines no network";
        return nullptr;
    }
    if (names.size() > 1) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        error = "the file defines several networks (" + list + "); choose one with --network NAME";
        return nullptr;
    }
    return c.networks.empty() ? nullptr : &c.networks.front();
}

Precision parse_precision(const std::string& name) {
    return name == "f32" ? Precision::F32 : name == "tf32" ? Precision::TF32 : name == "bf16" ? Precision::BF16 : Precision::Default;
}

// --precision for `emit`, which compiles for a backend without running it: the backend must offer it.
bool check_emit_precision(const Options& o, Backend backend, DType dtype) {
    if (o.precision.empty()) return true;
    auto offered = backend_precisions(backend, dtype);
    if (std::find(offered.begin(), offered.end(), parse_precision(o.precision)) != offered.end()) return true;
    std::string names;
    for (Precision p : offered) names += std::string(names.empty() ? "" : ", ") + to_string(p);
    fail("precision " + o.precision + " is not available for --emit " + o.emit + "; it offers " + names);
    return false;
}

// --schedule NAME sets the default; --schedule PATH=NAME one weight's.
bool parse_schedules(const std::vector<std::string>& args, CompileOptions& options) {
    for (const auto& a : args) {
        auto eq = a.rfind('=');
        std::string name = eq == std::string::npos ? a : a.substr(eq + 1);
        if (!kp::find_schedule(name)) {
            std::string names;
            for (const auto& s : kp::schedules()) names += (names.empty() ? "" : ", ") + s.name;
            fail("unknown schedule '" + name + "'; the schedules are " + names);
            return false;
        }
        if (eq == std::string::npos)
            options.schedule = name;
        else
            options.leaf_schedules[a.substr(0, eq)] = name;
    }
    return true;
}

// --memory-limit: BYTES, or a number with K, M, G or T (powers of 1024), into options.memory_limit.
bool parse_memory_limit(const std::string& text, CompileOptions& options) {
    if (text.empty()) return true;
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    std::string unit = end ? std::string(end) : "";
    const std::string units = "KMGT";
    auto at = unit.size() == 1 ? units.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))))
                               : std::string::npos;
    if (end != text.c_str() && at != std::string::npos) value *= std::ldexp(1.0, 10 * static_cast<int>(at + 1));
    if (end == text.c_str() || (!unit.empty() && at == std::string::npos) || !(value >= 1) || value > 9.2e18) {
        fail("--memory-limit expects BYTES, or a number with K, M, G or T (1024s): 512M, 8G; got '" + text + "'");
        return false;
    }
    options.memory_limit = static_cast<std::uint64_t>(value);
    return true;
}

// What the compiling commands (dualize, bench, step, partition) share: the plan's network,
// --schedule, --set, --no-gram, --threads, --device, --precision and --memory-limit. False after saying
// what is wrong.
bool compile_options(const Options& o, const DualPlan& plan, CompileOptions& options) {
    options.network = plan.network;
    if (!parse_schedules(o.schedules, options)) return false;
    for (const auto& s : o.sets) options.set[s.substr(0, s.find('='))] = s.substr(s.find('=') + 1);
    options.gram = !o.no_gram;
    options.threads = o.threads;
    options.device = o.device;
    options.precision = parse_precision(o.precision);
    return parse_memory_limit(o.memory_limit, options);
}

// False after saying why, when `backend` cannot run here (no GPU, no host compiler, ...).
bool backend_available(Backend backend) {
    const std::string why = backend_unavailable(backend);
    if (!why.empty())
        fail(std::string(backend == Backend::CudaSim ? "the cuda-sim backend" : "the CUDA backend") + " cannot run here: " +
             why + "; use --backend cpu");
    return why.empty();
}

#ifdef MODC_WITH_CUDA
std::unique_ptr<cuda::DiskCache> kernel_cache() {
    auto dir = cuda::DiskCache::default_dir();
    return dir.empty() ? nullptr : std::make_unique<cuda::DiskCache>(dir / "nvrtc");
}
#endif

// `--emit cost --json`: the GPU program's cost listing (program/cuda_cost.hpp).
std::string cost_json(const cuda::Program& program) {
    const cuda::Cost c = cuda::cost(program);
    nlohmann::json ops = nlohmann::json::array();
    for (const auto& op : c.ops)
        ops.push_back({{"op", op.op}, {"kind", op.kind}, {"name", op.name}, {"shape", op.shape}, {"precision", op.precision},
                       {"flops", op.flops}, {"bytes_read", op.read}, {"bytes_written", op.written},
                       {"modelled_us", op.seconds * 1e6}});
    nlohmann::json j = {{"network", program.network},
                        {"schedule", program.schedule},
                        {"precision", kp::to_string(program.precision)},
                        {"peaks", {{"device", c.peaks.name}, {"bf16_flops", c.peaks.bf16}, {"tf32_flops", c.peaks.tf32},
                                   {"f32_flops", c.peaks.f32}, {"f64_flops", c.peaks.f64}, {"f64_cuda_core_flops", c.peaks.f64_cuda},
                                   {"bytes_per_second", c.peaks.bandwidth}}},
                        {"ops", ops},
                        {"total", {{"ops", c.ops.size()}, {"kernels", c.launches}, {"cublas_calls", c.matmuls},
                                   {"host_checks", c.checks}, {"flops", c.flops}, {"bytes_read", c.read},
                                   {"bytes_written", c.written}, {"modelled_ms", c.seconds * 1e3}}}};
    return j.dump(1) + "\n";
}

// `--emit cuda` (text, always), `--emit cost` and `--emit ptx` (NVRTC, for --arch).
int emit_cuda(const Options& o, const kp::KernelPlan& kernel_plan, const std::function<int(const std::string&)>& write) {
    cuda::CudaOptions co;
    co.type = o.dtype == "f64" ? ElementType::F64 : ElementType::F32;
    co.storage = o.dtype == "bf16" ? cuda::Storage::BF16 : cuda::Storage::Compute;
    cuda::Program program;
    try {
        program = cuda::codegen_cuda(kernel_plan, co);
    } catch (const cuda::Unsupported& e) {
        return fail(e.what());
    }
    if (o.emit == "cuda") return write(cuda::print_cuda(program));
    if (o.emit == "cost") return write(o.json ? cost_json(program) : cuda::print_cost(cuda::cost(program)));
#ifdef MODC_WITH_CUDA
    std::string arch = cuda::normalize_arch(o.arch);
    if (arch.empty()) return fail("--arch expects an architecture such as sm_80 or sm_90, got '" + o.arch + "'");
    std::string why;
    const cuda::Nvrtc* nvrtc = cuda::load_nvrtc(&why);
    if (!nvrtc) return fail(why);
    cuda::CompileRequest request;
    request.source = program.source;
    request.name = program.network + ".cu";
    request.arch = arch;
    auto cache = kernel_cache();
    cuda::Compiled compiled = cuda::compile(*nvrtc, request, cache.get());
    if (!compiled.ok) {
        std::cerr << compiled.log << '\n';
        return fail("NVRTC " + cuda::nvrtc_version(*nvrtc) + " could not compile the generated CUDA code for " + arch +
                    " (its log is above)");
    }
    return write(compiled.ptx);
#else
    return fail(backend_unavailable(Backend::Cuda) + "; --emit ptx needs it");
#endif
}

// --backend's value (CLI11 has checked it is one of these).
Backend parse_backend(const std::string& name) {
    return name == "cuda" ? Backend::Cuda : name == "cuda-sim" ? Backend::CudaSim : Backend::Cpu;
}

// `modc partition`: per rank its modelled work and weights, as text or JSON.
std::string print_partition(const Partition& p, bool json) {
    if (json) {
        nlohmann::json j = {{"network", p.network}, {"schedule", p.schedule}, {"ranks", p.ranks},
                            {"imbalance", p.imbalance}, {"round_robin_imbalance", p.round_robin_imbalance},
                            {"best_imbalance", p.best_imbalance}};
        j["per_rank"] = nlohmann::json::array();
        for (int r = 0; r < p.ranks; ++r) {
            nlohmann::json weights = nlohmann::json::array();
            for (std::size_t i = 0; i < p.weights.size(); ++i)
                if (p.owner[i] == r) weights.push_back(p.weights[i].path);
            j["per_rank"].push_back({{"rank", r}, {"flops", p.rank_cost[static_cast<std::size_t>(r)]}, {"weights", weights}});
        }
        j["weights"] = nlohmann::json::array();
        for (std::size_t i = 0; i < p.weights.size(); ++i)
            j["weights"].push_back({{"path", p.weights[i].path}, {"owner", p.owner[i]}, {"flops", p.cost[i]}});
        return j.dump(1) + "\n";
    }
    std::ostringstream out;
    char buf[160];
    std::snprintf(buf, sizeof buf, "modelled imbalance %.3f (max / mean; round-robin: %.3f; at best %.3f)", p.imbalance,
                  p.round_robin_imbalance, p.best_imbalance);
    out << "partition of network " << p.network << " over " << p.ranks << " ranks, schedule " << p.schedule << ": " << buf
        << "\n";
    for (int r = 0; r < p.ranks; ++r) {
        std::vector<std::string> mine;
        for (std::size_t i = 0; i < p.weights.size(); ++i)
            if (p.owner[i] == r) mine.push_back(p.weights[i].path);
        std::snprintf(buf, sizeof buf, "  rank %d: %.4g flops, %zu weights:", r, p.rank_cost[static_cast<std::size_t>(r)], mine.size());
        out << buf;
        for (const auto& m : mine) out << " " << m;
        out << "\n";
    }
    return out.str();
}

int run(const Options& o) {
    std::string source, read_error;
    if (!read_source_file(o.file, source, read_error)) return fail(read_error);

    ElaborateOptions eo;
    if (!parse_sets(o.sets, eo.overrides)) return 1;
    eo.only_network = o.network;
    Stage until = o.command == "emit" && o.emit == "ast" ? Stage::Parse
                  : o.command == "graph" || (o.command == "emit" && o.emit == "ir") ? Stage::IR
                                                                                    : Stage::Dual;
    auto c = compile_source(o.file, source, eo, until);
    c->diags.render(std::cerr, o.color);
    if (c->diags.has_errors()) return 1;

    if (o.command == "check") return 0;
    auto write = [&](const std::string& text) {
        return write_atomically(o.output, text) ? 0 : fail("cannot write '" + o.output + "'");
    };
    if (o.command == "emit" && o.emit == "ast") return write(print_ast(c->file, c->sources));

    std::string error;
    const ir::Network* network = pick_network(*c, o.network, error);
    if (!network) return fail(error);
    if (o.command == "graph") return write(print_dot(*network));
    if (o.command == "emit" && o.emit == "ir") return write(print_ir(*network, c->sources));
    if (o.command == "emit" && o.emit == "dual") {
        for (const auto& p : c->plans)
            if (p.network == network->name) return write(explain_text(p));
    }

    const DualPlan* plan = nullptr;
    for (const auto& p : c->plans)
        if (p.network == network->name) plan = &p;
    MODC_ASSERT(plan != nullptr, "a network without errors has a dual plan");
    if (!o.why.empty()) {
        auto text = explain_why(*plan, o.why);
        if (!text) {
            std::vector<std::string> paths;
            for (const auto& l : plan->leaves) paths.push_back(l.path);
            std::string hint = closest_match(o.why, paths);
            return fail("network '" + plan->network + "' has no weight '" + o.why + "'" +
                        (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        }
        return write(*text);
    }
    if (o.command == "dualize") {
        DualizeArgs args{o.file, source, o.input, o.output, {}};
        args.options.backend = parse_backend(o.backend);
        // Before the gradients are read: a machine without a GPU says so, whatever the input.
        if (!backend_available(args.options.backend)) return 1;
        if (!compile_options(o, *plan, args.options)) return 1;
        return run_dualize(args, *plan);
    }
    if (o.command == "step") {
        StepArgs args{o.file, source, o.weights, o.grads, o.state, o.output, o.out_state, o.hypers, o.step, {}};
        args.options.optimizer = o.optimizer;
        args.options.backend = parse_backend(o.backend);
        if (!compile_options(o, *plan, args.options) || !backend_available(args.options.backend)) return 1;
        return run_step(args, *plan);
    }
    if (o.command == "partition") {
        CompileOptions co;
        if (!compile_options(o, *plan, co)) return 1;
        return write(print_partition(partition_text(o.file, source, o.ranks, co), o.json));
    }
    if (o.command == "emit" && o.emit.rfind("step", 0) == 0) {
        const ast::Optimizer& block = choose_optimizer(*c, o.file, o.optimizer);
        if (o.emit != "step-plan" && o.dtype == "bf16") return fail("the optimizer step runs on f32 or f64 weights: --dtype f32 or f64");
        std::optional<std::string> text =
            emit_step(block, *plan, o.emit, o.dtype == "f64" ? ElementType::F64 : ElementType::F32, c->diags);
        c->diags.render(std::cerr, o.color);
        return text ? write(*text) : 1;
    }
    if (o.command == "bench") {
        CompileOptions co;
        if (!compile_options(o, *plan, co)) return 1;
        co.dtype = o.dtype == "f64" ? DType::F64 : o.dtype == "bf16" ? DType::BF16 : DType::F32;
        co.backend = parse_backend(o.backend);
        // No GPU: BackendUnavailable (a CompileError), one line on stderr from run_guarded, exit 1.
        // For Cuda the compile time includes NVRTC, or reading its disk cache.
        try {
            auto start = std::chrono::steady_clock::now();
            Dualizer dualizer = compile_source_text(o.file, source, co);
            double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            return write(run_bench(dualizer, seconds, o.bench));
        } catch (const BackendError& e) {  // the GPU failed: a driver, NVRTC or cuBLAS error
            return fail(e.what());
        }
    }
    if (o.command == "emit" && (o.emit == "plan" || o.emit == "llvm" || o.emit == "cuda" || o.emit == "ptx" || o.emit == "cost")) {
        CompileOptions co;
        if (!parse_schedules(o.schedules, co)) return 1;
        std::map<std::string, const kp::Schedule*> per_leaf;
        for (const auto& [path, name] : co.leaf_schedules) per_leaf[path] = kp::find_schedule(name);
        const DType dtype = o.dtype == "f64" ? DType::F64 : o.dtype == "bf16" ? DType::BF16 : DType::F32;
        const bool gpu = o.emit == "cuda" || o.emit == "ptx" || o.emit == "cost";
        if (o.emit != "plan" && !check_emit_precision(o, gpu ? Backend::Cuda : Backend::Cpu, dtype)) return 1;
        // No --precision: the backend's default (the plan: the CPU's).
        const Precision precision = o.precision.empty() ? backend_precisions(gpu ? Backend::Cuda : Backend::Cpu, dtype).front()
                                                        : parse_precision(o.precision);
        kp::KernelPlan kernel_plan =
            kp::lower(*plan, *kp::find_schedule(co.schedule), per_leaf,
                      {.gram = !o.no_gram,
                       .precision = precision == Precision::TF32   ? kp::Precision::TF32
                                    : precision == Precision::BF16 ? kp::Precision::BF16
                                                                   : kp::Precision::F32,
                       .gram_restart_every = gpu});
        if (o.emit == "plan") return write(kp::print(kernel_plan));
        if (gpu) return emit_cuda(o, kernel_plan, write);
        if (o.dtype == "bf16")
            return fail("--dtype bf16 is the CUDA backend's storage of gradients and updates: it goes with --emit cuda "
                        "or ptx (the CPU backend computes bf16 in f32: --dtype f32)");
        return write(print_llvm(codegen_llvm(kernel_plan, o.dtype == "f64" ? ElementType::F64 : ElementType::F32)));
    }
    if (o.json) return write(explain_json(*plan).dump(1) + "\n");
    return write(explain_text(*plan));
}

int run_guarded(const Options& options) {
    int status = 0;
    try {
        run_with_large_stack([&] { status = run(options); });
    } catch (const CompileError& e) {  // a user error found by the API (e.g. --schedule for a missing weight)
        std::cerr << "modc: error: " << e.what() << '\n';
        status = 1;
    } catch (const InternalError& e) {
        std::cerr << "modc: " << e.what() << "\nThis is a bug in modc; please report it with the input file.\n";
        status = 2;
    } catch (const std::bad_alloc&) {  // past the memory limit's estimate: a --memory-limit above what the machine has
        std::cerr << "modc: error: out of memory: the machine could not allocate what this run needs; a lower "
                     "--memory-limit refuses such runs before they start\n";
        status = 1;
    } catch (const std::exception& e) {
        std::cerr << "modc: internal error: " << e.what() << '\n';
        status = 2;
    }
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"modc: a compiler for the modular norm.\nDerives the duality map of a network described in a .mod file.",
                 "modc"};
    app.set_version_flag("--version", std::string("modc ") + MODC_VERSION);
    app.require_subcommand(1);
    Options o;
    auto common = [&](CLI::App* sub) {
        sub->add_option("file", o.file, "the .mod file")->required();
        sub->add_option("--network", o.network, "the network to use when the file defines several");
        sub->add_option("--set", o.sets, "set a network parameter: --set d=64 (repeatable)");
        sub->add_flag("--color", o.color, "color diagnostics");
    };
    auto* check = app.add_subcommand("check", "parse, elaborate and check a file; report every error");
    common(check);
    auto* emit = app.add_subcommand("emit", "print a stage of the compilation");
    common(emit);
    emit->add_option("--emit", o.emit,
                     "the stage: ast, ir, dual, plan, llvm, cuda, ptx or cost (the GPU program's ops, what each "
                     "computes and moves, and a modelled H100 time); or an optimizer's step: step-plan, step (LLVM IR) "
                     "or step-cuda")
        ->check(CLI::IsMember({"ast", "ir", "dual", "plan", "llvm", "cuda", "ptx", "cost", "step-plan", "step", "step-cuda"}));
    emit->add_flag("--json", o.json, "--emit cost: as JSON");
    emit->add_option("--optimizer", o.optimizer, "the optimizer block for --emit step*, when the file has several");
    emit->add_option("--arch", o.arch, "GPU architecture for --emit ptx: sm_90 (default), sm_80, ...");
    emit->add_option("--schedule", o.schedules, "orthogonalisation schedule: NAME or PATH=NAME (repeatable)");
    emit->add_option("--dtype", o.dtype,
                     "element type of the generated kernels: f32, f64, or bf16 (--emit cuda/ptx: bf16 gradients and "
                     "updates, f32 compute)")
        ->check(CLI::IsMember({"f32", "f64", "bf16"}));
    emit->add_option("-o,--output", o.output, "write to this file instead of standard output");
    auto no_gram = [&](CLI::App* sub) {
        sub->add_flag("--no-gram", o.no_gram,
                      "iterate on every matrix directly: no Gram Newton-Schulz for wide matrices");
    };
    no_gram(emit);
    const char* precision_help = "precision of the matmuls' inputs: f32, tf32 or bf16 (default: the backend's)";
    auto precision = [&](CLI::App* sub) {
        sub->add_option("--precision", o.precision, precision_help)->check(CLI::IsMember({"f32", "tf32", "bf16"}));
    };
    precision(emit);
    auto device = [&](CLI::App* sub) {
        sub->add_option("--device", o.device, "the GPU to run on, by CUDA's index (cuda, cuda-sim; default 0)")
            ->check(CLI::NonNegativeNumber);
    };
    auto* graph = app.add_subcommand("graph", "print the module tree as Graphviz DOT");
    common(graph);
    graph->add_option("-o,--output", o.output, "write to this file instead of standard output");

    auto* explain = app.add_subcommand("explain", "derive the network's modular norm and the target of every weight");
    common(explain);
    explain->add_flag("--json", o.json, "print the derivation as JSON (schema in docs/derivation.md)");
    explain->add_option("--why", o.why, "show the chain of factors behind one weight's target (by path)");
    explain->add_option("-o,--output", o.output, "write to this file instead of standard output");

    auto* dualize_cmd = app.add_subcommand("dualize", "apply the network's duality map to gradients");
    common(dualize_cmd);
    dualize_cmd->add_option("--in", o.input,
                            "gradients: a .safetensors file (F32, F64 or BF16) or a directory of .npy files (f32, f64)")
        ->required();
    dualize_cmd->add_option("--out", o.output, "updates, written whole or not at all (same formats)")->required();
    dualize_cmd->add_option("--schedule", o.schedules,
                            "orthogonalisation schedule: muon, you, polar-express (default), cubic, svd; "
                            "PATH=NAME for one weight (repeatable)");
    dualize_cmd->add_option("--backend", o.backend, "where to run: cpu, cuda (a GPU) or cuda-sim (the CUDA program on the host)")
        ->check(CLI::IsMember({"cpu", "cuda", "cuda-sim"}));
    no_gram(dualize_cmd);
    precision(dualize_cmd);
    device(dualize_cmd);
    dualize_cmd->add_option("--threads", o.threads, "matrices dualized at once on the CPU (default: one per core)")
        ->check(CLI::Range(1, 1024));
    const char* memory_help = "host memory the run may use: BYTES, or N with K, M, G or T (default: half of the physical memory)";
    dualize_cmd->add_option("--memory-limit", o.memory_limit, memory_help);

    auto* bench = app.add_subcommand("bench", "time the compiled dualizer on random gradients");
    common(bench);
    bench->add_option("--schedule", o.schedules, "orthogonalisation schedule: NAME or PATH=NAME (repeatable)");
    bench->add_option("--backend", o.backend,
                      "where to run: cpu, cuda (a GPU: reports the GPU time too) or cuda-sim (the CUDA program on the host)")
        ->check(CLI::IsMember({"cpu", "cuda", "cuda-sim"}));
    bench->add_option("--dtype", o.dtype, "f32, f64, or bf16 (bf16 gradients and updates, computed in f32)")
        ->check(CLI::IsMember({"f32", "f64", "bf16"}));
    bench->add_option("--runs", o.bench.runs, "timed runs")->check(CLI::Range(1, 100000));
    bench->add_option("--warmup", o.bench.warmup, "untimed runs first")->check(CLI::Range(0, 100000));
    bench->add_flag("--json", o.bench.json, "print the report as JSON");
    no_gram(bench);
    precision(bench);
    device(bench);
    bench->add_option("--threads", o.threads, "matrices dualized at once (default: one per core)")->check(CLI::Range(1, 1024));
    bench->add_option("--memory-limit", o.memory_limit, memory_help);
    bench->add_option("-o,--output", o.output, "write to this file instead of standard output");

    auto* partition_cmd = app.add_subcommand("partition", "assign each weight's map to one of N ranks, balancing modelled work");
    common(partition_cmd);
    partition_cmd->add_option("--ranks", o.ranks, "the number of ranks")->required()->check(CLI::Range(1, 1 << 20));
    partition_cmd->add_flag("--json", o.json, "print the partition as JSON");
    partition_cmd->add_option("--schedule", o.schedules, "orthogonalisation schedule: NAME or PATH=NAME (repeatable)");
    no_gram(partition_cmd);
    partition_cmd->add_option("-o,--output", o.output, "write to this file instead of standard output");

    auto* step_cmd = app.add_subcommand("step", "run one step of the file's optimizer block on weights and gradients");
    common(step_cmd);
    step_cmd->add_option("--weights", o.weights, "weights by path: a .safetensors file (F32 or F64) or a directory of .npy files")
        ->required();
    step_cmd->add_option("--grads", o.grads, "gradients by path, of the weights' dtype")->required();
    step_cmd->add_option("--state", o.state, "optimizer state as STATE/PATH tensors (default: zero, as before a first step)");
    step_cmd->add_option("--out", o.output, "the weights after the step, written whole or not at all")->required();
    step_cmd->add_option("--out-state", o.out_state, "the state after the step (STATE/PATH tensors, .safetensors)");
    step_cmd->add_option("--optimizer", o.optimizer, "the optimizer block to run when the file has several");
    step_cmd->add_option("--hyper", o.hypers, "set a hyperparameter of the block: --hyper lr=0.01 (repeatable)");
    step_cmd->add_option("--step", o.step, "the step count of this step, which the block reads as `step` (default 1, the first)");
    step_cmd->add_option("--schedule", o.schedules, "orthogonalisation schedule of dualize(...): NAME or PATH=NAME (repeatable)");
    step_cmd->add_option("--backend", o.backend, "where the step runs: cpu, cuda or cuda-sim")
        ->check(CLI::IsMember({"cpu", "cuda", "cuda-sim"}));
    no_gram(step_cmd);
    precision(step_cmd);
    device(step_cmd);
    step_cmd->add_option("--threads", o.threads, "matrices dualized at once on the CPU (default: one per core)")
        ->check(CLI::Range(1, 1024));
    step_cmd->add_option("--memory-limit", o.memory_limit, memory_help);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --version
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);  // prints the usage error
        return 1;     // every user error exits 1, usage errors included (CLI11's own codes are 100+)
    }
    for (auto* sub : {check, emit, graph, explain, dualize_cmd, bench, partition_cmd, step_cmd})
        if (sub->parsed()) o.command = sub->get_name();
    if (!o.color) o.color = ::isatty(2) && std::getenv("NO_COLOR") == nullptr;
    return run_guarded(o);
}
