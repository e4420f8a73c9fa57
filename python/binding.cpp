// modc._modc: the C++ library (library/modc.hpp) for Python, through pybind11. Tensors cross as
// raw addresses (an int per weight) that the Python layer (python/modc/) takes from NumPy
// arrays or torch tensors after checking them, so that nothing here depends on PyTorch. On the
// CUDA backend, run_device and step_device take device addresses (torch's data_ptr() of CUDA
// tensors) and the stream to enqueue on as an int (torch.cuda.current_stream().cuda_stream).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>

#include "compiler/analysis/compilation.hpp"
#include "compiler/analysis/explain.hpp"
#include "library/compile.hpp"
#include "library/modc.hpp"

namespace py = pybind11;
using namespace modc;

namespace {

CompileOptions options_from(const std::string& network, const std::map<std::string, std::string>& set,
                            const std::string& schedule, const std::string& backend, const std::string& dtype, bool gram,
                            unsigned threads, const std::string& precision = "") {
    CompileOptions o;
    o.network = network;
    o.set = set;
    o.schedule = schedule;
    if (backend != "cpu" && backend != "cuda" && backend != "cuda-sim")
        throw CompileError("backend must be 'cpu', 'cuda' or 'cuda-sim', not '" + backend + "'");
    o.backend = backend == "cuda" ? Backend::Cuda : backend == "cuda-sim" ? Backend::CudaSim : Backend::Cpu;
    if (dtype != "f32" && dtype != "f64" && dtype != "bf16")
        throw CompileError("dtype must be 'f32', 'f64' or 'bf16', not '" + dtype + "'");
    o.dtype = dtype == "f64" ? DType::F64 : dtype == "bf16" ? DType::BF16 : DType::F32;
    o.gram = gram;
    o.threads = threads;
    if (!precision.empty() && precision != "f32" && precision != "tf32" && precision != "bf16")
        throw CompileError("precision must be 'f32', 'tf32' or 'bf16', not '" + precision + "'");
    o.precision = precision == "f32"    ? Precision::F32
                  : precision == "tf32" ? Precision::TF32
                  : precision == "bf16" ? Precision::BF16
                                        : Precision::Default;
    return o;
}

const char* dtype_name(DType d) { return d == DType::F64 ? "f64" : d == DType::BF16 ? "bf16" : "f32"; }

py::list weights_of(const std::vector<WeightInfo>& weights) {
    py::list out;
    for (const auto& w : weights)
        out.append(py::dict(py::arg("path") = w.path, py::arg("atom") = w.atom, py::arg("shape") = py::tuple(py::cast(w.shape)),
                            py::arg("target") = w.target, py::arg("scale") = w.scale));
    return out;
}

template <class T>
std::vector<T*> pointers(const std::vector<std::uintptr_t>& addresses) {
    std::vector<T*> out;
    for (auto a : addresses) out.push_back(reinterpret_cast<T*>(a));
    return out;
}

template <class T>
void run(Dualizer& d, const std::vector<std::uintptr_t>& grads, const std::vector<std::uintptr_t>& updates) {
    auto in = pointers<const T>(grads);
    auto out = pointers<T>(updates);
    py::gil_scoped_release release;
    d.run(in.data(), out.data());
}

void run_device(Dualizer& d, const std::vector<std::uintptr_t>& grads, const std::vector<std::uintptr_t>& updates,
                std::uintptr_t stream) {
    auto in = pointers<const void>(grads);
    auto out = pointers<void>(updates);
    py::gil_scoped_release release;
    d.run_device(in.data(), out.data(), reinterpret_cast<void*>(stream));
}

template <class T>
void step(Optimizer& o, const std::vector<std::uintptr_t>& weights, const std::vector<std::uintptr_t>& grads) {
    auto w = pointers<T>(weights);
    auto g = pointers<const T>(grads);
    py::gil_scoped_release release;
    o.step(w.data(), g.data());
}

void check_count(std::size_t got, std::size_t want, const char* what) {
    if (got != want)
        throw std::invalid_argument(std::string(what) + ": " + std::to_string(got) + " tensors for " + std::to_string(want) +
                                    " weights");
}

}  // namespace

PYBIND11_MODULE(_modc, m) {
    m.doc() = "modc's C++ library; use the modc package, not this module";
    static py::exception<CompileError> compile_error(m, "CompileError", PyExc_ValueError);
    static py::exception<BackendError> backend_error(m, "BackendError", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const CompileError& e) {
            compile_error(e.what());
        } catch (const BackendError& e) {
            backend_error(e.what());
        } catch (const InternalError& e) {
            PyErr_SetString(PyExc_RuntimeError, (std::string("modc: ") + e.what() + " (a bug in modc)").c_str());
        }
    });

    py::class_<Dualizer>(m, "Dualizer")
        .def_property_readonly("network", &Dualizer::network)
        .def_property_readonly("schedule", &Dualizer::schedule)
        .def_property_readonly("dtype", [](const Dualizer& d) { return dtype_name(d.dtype()); })
        .def_property_readonly("backend", [](const Dualizer& d) { return to_string(d.backend()); })
        .def_property_readonly("device", &Dualizer::device)
        .def_property_readonly("flops", &Dualizer::flops)
        .def_property_readonly("weights", [](const Dualizer& d) { return weights_of(d.weights()); })
        .def("run", [](Dualizer& d, const std::vector<std::uintptr_t>& grads, const std::vector<std::uintptr_t>& updates) {
            check_count(grads.size(), d.weights().size(), "gradients");
            check_count(updates.size(), d.weights().size(), "updates");
            switch (d.dtype()) {
                case DType::F32: run<float>(d, grads, updates); break;
                case DType::F64: run<double>(d, grads, updates); break;
                case DType::BF16: run<std::uint16_t>(d, grads, updates); break;
            }
        })
        .def("run_device", [](Dualizer& d, const std::vector<std::uintptr_t>& grads, const std::vector<std::uintptr_t>& updates,
                              std::uintptr_t stream) {
            check_count(grads.size(), d.weights().size(), "gradients");
            check_count(updates.size(), d.weights().size(), "updates");
            run_device(d, grads, updates, stream);
        });

    m.def(
        "compile",
        [](const std::string& name, const std::string& text, const std::string& network,
           const std::map<std::string, std::string>& set, const std::string& schedule, const std::string& backend,
           const std::string& dtype, bool gram, unsigned threads, const std::string& precision, int device) {
            CompileOptions o = options_from(network, set, schedule, backend, dtype, gram, threads, precision);
            o.device = device;
            return compile_source_text(name, text, o);
        },
        py::arg("name"), py::arg("text"), py::arg("network"), py::arg("set"), py::arg("schedule"), py::arg("backend"),
        py::arg("dtype"), py::arg("gram"), py::arg("threads"), py::arg("precision") = "", py::arg("device") = 0);

    // For the tests of the device index (tests/python/cuda_device_check.py).
    m.def("_sim_calls_in_context", &sim_calls_in_context, py::arg("device"));

    m.def(
        "explain_json",
        [](const std::string& name, const std::string& text, const std::string& network,
           const std::map<std::string, std::string>& set) {
            CompileOptions o;
            o.network = network;
            o.set = set;
            return explain_json(front_end(name, text, o)->plans.front()).dump();
        },
        py::arg("name"), py::arg("text"), py::arg("network"), py::arg("set"));

    py::class_<Optimizer>(m, "Optimizer")
        .def_property_readonly("name", &Optimizer::name)
        .def_property_readonly("dtype", [](const Optimizer& o) { return dtype_name(o.dualizer().dtype()); })
        .def_property_readonly("backend",
                               [](const Optimizer& o) { return to_string(o.dualizer().backend()); })
        .def_property_readonly("weights", [](const Optimizer& o) { return weights_of(o.weights()); })
        .def_property_readonly("hyperparameters", &Optimizer::hyperparameters)
        .def_property_readonly("state_names", &Optimizer::state_names)
        .def("has_state", &Optimizer::has_state, py::arg("name"), py::arg("weight"))
        .def_property("steps", &Optimizer::steps, &Optimizer::set_steps)
        .def("hyperparameter", &Optimizer::hyperparameter)
        .def("set_hyperparameter", &Optimizer::set_hyperparameter)
        .def("read_state", [](const Optimizer& o, const std::string& name, std::size_t weight,
                              std::uintptr_t data) { o.read_state(name, weight, reinterpret_cast<void*>(data)); })
        .def("write_state", [](Optimizer& o, const std::string& name, std::size_t weight,
                               std::uintptr_t data) { o.write_state(name, weight, reinterpret_cast<const void*>(data)); })
        .def("zero_state", &Optimizer::zero_state)
        .def("step", [](Optimizer& o, const std::vector<std::uintptr_t>& weights, const std::vector<std::uintptr_t>& grads) {
            check_count(weights.size(), o.weights().size(), "weights");
            check_count(grads.size(), o.weights().size(), "gradients");
            if (o.dualizer().dtype() == DType::F64)
                step<double>(o, weights, grads);
            else
                step<float>(o, weights, grads);
        })
        .def("step_device", [](Optimizer& o, const std::vector<std::uintptr_t>& weights, const std::vector<std::uintptr_t>& grads,
                               std::uintptr_t stream) {
            check_count(weights.size(), o.weights().size(), "weights");
            check_count(grads.size(), o.weights().size(), "gradients");
            auto w = pointers<void>(weights);
            auto g = pointers<const void>(grads);
            py::gil_scoped_release release;
            o.step_device(w.data(), g.data(), reinterpret_cast<void*>(stream));
        });

    m.def(
        "compile_optimizer",
        [](const std::string& name, const std::string& text, const std::string& optimizer, const std::string& network,
           const std::map<std::string, std::string>& set, const std::string& schedule, const std::string& backend,
           const std::string& dtype, bool gram, unsigned threads, const std::vector<std::string>& owned,
           const std::string& precision, int device) {
            OptimizerOptions o;
            static_cast<CompileOptions&>(o) = options_from(network, set, schedule, backend, dtype, gram, threads, precision);
            o.device = device;
            o.optimizer = optimizer;
            o.owned = owned;
            return compile_optimizer_text(name, text, o);
        },
        py::arg("name"), py::arg("text"), py::arg("optimizer"), py::arg("network"), py::arg("set"), py::arg("schedule"),
        py::arg("backend"), py::arg("dtype"), py::arg("gram"), py::arg("threads"), py::arg("owned") = std::vector<std::string>{},
        py::arg("precision") = "", py::arg("device") = 0);

    m.def(
        "partition",
        [](const std::string& name, const std::string& text, int ranks, const std::string& network,
           const std::map<std::string, std::string>& set, const std::string& schedule, bool gram) {
            Partition p = partition_text(name, text, ranks, options_from(network, set, schedule, "cpu", "f32", gram, 0));
            py::list weights;
            for (std::size_t i = 0; i < p.weights.size(); ++i)
                weights.append(py::dict(py::arg("path") = p.weights[i].path,
                                        py::arg("shape") = py::tuple(py::cast(p.weights[i].shape)),
                                        py::arg("owner") = p.owner[i], py::arg("flops") = p.cost[i]));
            return py::dict(py::arg("network") = p.network, py::arg("schedule") = p.schedule, py::arg("ranks") = p.ranks,
                            py::arg("weights") = weights, py::arg("rank_flops") = p.rank_cost,
                            py::arg("imbalance") = p.imbalance, py::arg("round_robin_imbalance") = p.round_robin_imbalance,
                            py::arg("best_imbalance") = p.best_imbalance);
        },
        py::arg("name"), py::arg("text"), py::arg("ranks"), py::arg("network"), py::arg("set"), py::arg("schedule"),
        py::arg("gram"));
}
