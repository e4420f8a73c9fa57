// Tensors, and what does not depend on a file format: dtypes, reading by path, conversion,
// validation, and the helpers the formats share (tensor_io_format.hpp); see tensor_io.hpp. The
// formats: tensor_io_npy.cpp, tensor_io_safetensors.cpp; writing: tensor_io_writer.cpp.
#include "runtime/tensor_io.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "runtime/tensor_io_format.hpp"
#include "support/bf16.hpp"

namespace modc::rt {

namespace detail {

std::string quote_name(const std::string& name) {
    std::string out = "'";
    for (unsigned char c : name) {
        if (c < 0x20 || c == 0x7f) {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "'";
}

std::string errno_text(int err) { return std::system_category().message(err); }

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::optional<std::uint64_t> byte_count(const std::vector<std::int64_t>& shape, DType dtype) {
    std::uint64_t n = dtype_size(dtype);
    for (std::int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return std::nullopt;
    }
    if (n > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return n;
}

std::string data_size_problem(const Tensor& t) {
    auto needed = byte_count(t.shape, t.dtype);
    if (!needed) return "tensor " + quote_name(t.name) + " has invalid shape " + format_shape(t.shape);
    if (t.data.size() == *needed) return "";
    return "tensor " + quote_name(t.name) + " has " + std::to_string(t.data.size()) + " data bytes, but shape " +
           format_shape(t.shape) + " of " + dtype_name(t.dtype) + " needs " + std::to_string(*needed);
}

std::uint64_t load_le(const unsigned char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

std::string store_le(std::uint64_t v, int bytes) {
    std::string out;
    for (int i = 0; i < bytes; ++i, v >>= 8) out.push_back(static_cast<char>(v & 0xff));
    return out;
}

}  // namespace detail

using namespace detail;
namespace fs = std::filesystem;

std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::F32: return 4;
        case DType::F64: return 8;
        case DType::BF16: return 2;
    }
    return 0;
}

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::F32: return "F32";
        case DType::F64: return "F64";
        case DType::BF16: return "BF16";
    }
    return "?";
}

std::string format_shape(const std::vector<std::int64_t>& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

void Bytes::resize(std::size_t n) {
    if (file_) {
        const std::byte* p = view_;
        owned_.assign(p, p + std::min(n, view_size_));
        file_.reset();
        view_ = nullptr;
        view_size_ = 0;
    }
    owned_.resize(n);
}

void Bytes::release_pages() {
    if (!file_) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<std::uintptr_t>(view_) + page - 1) / page * page;
    const auto end = (reinterpret_cast<std::uintptr_t>(view_) + view_size_) / page * page;
    if (begin < end) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

bool operator==(const Bytes& a, const Bytes& b) {
    return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

std::int64_t Tensor::numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
}

void Tensor::check_view(DType wanted) const {
    if (dtype != wanted) fail("tensor " + quote_name(name) + " is " + dtype_name(dtype) + ", not " + dtype_name(wanted));
    std::string problem = data_size_problem(*this);
    if (!problem.empty()) fail(problem);
}

std::vector<Tensor> read_tensors(const std::string& path) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec) fail(path + ": " + ec.message());
    if (fs::is_directory(status)) return read_npy_dir(path);
    if (!fs::is_regular_file(status)) fail(path + ": not a regular file or directory");
    return read_safetensors(path);
}

Tensor convert(const Tensor& tensor, DType dtype) {
    if (std::string problem = data_size_problem(tensor); !problem.empty()) fail(problem);
    const std::size_t n = tensor.data.size() / dtype_size(tensor.dtype);
    std::vector<double> values(n);
    switch (tensor.dtype) {
        case DType::F32: std::copy_n(tensor.as<float>().ptr, n, values.begin()); break;
        case DType::F64: std::copy_n(tensor.as<double>().ptr, n, values.begin()); break;
        case DType::BF16: {
            const std::uint16_t* bits = tensor.as<std::uint16_t>().ptr;
            for (std::size_t i = 0; i < n; ++i) values[i] = bf16_to_f32(bits[i]);
            break;
        }
    }
    Tensor out{tensor.name, dtype, tensor.shape, std::vector<std::byte>(n * dtype_size(dtype))};
    switch (dtype) {
        case DType::F32: std::copy(values.begin(), values.end(), out.as<float>().ptr); break;
        case DType::F64: std::copy(values.begin(), values.end(), out.as<double>().ptr); break;
        case DType::BF16: {
            std::uint16_t* bits = out.as<std::uint16_t>().ptr;
            for (std::size_t i = 0; i < n; ++i) bits[i] = f32_to_bf16(static_cast<float>(values[i]));
            break;
        }
    }
    return out;
}

std::vector<std::string> validate(const std::vector<Tensor>& tensors, const std::vector<TensorSpec>& expected) {
    std::vector<std::string> problems;
    std::map<std::string, const Tensor*> by_name;
    for (const Tensor& t : tensors) {
        if (!by_name.emplace(t.name, &t).second) problems.push_back("duplicate tensor " + quote_name(t.name));
    }

    std::set<std::string> expected_names;
    for (const TensorSpec& spec : expected) {
        expected_names.insert(spec.name);
        auto it = by_name.find(spec.name);
        if (it == by_name.end()) {
            problems.push_back("missing tensor " + quote_name(spec.name) + " (expected shape " + format_shape(spec.shape) + ")");
            continue;
        }
        const Tensor& t = *it->second;
        if (t.shape != spec.shape) {
            problems.push_back("tensor " + quote_name(t.name) + " has shape " + format_shape(t.shape) + ", expected " +
                               format_shape(spec.shape));
        }
        std::string size_problem = data_size_problem(t);
        if (!size_problem.empty()) {
            problems.push_back(size_problem);
            continue;
        }
        std::size_t bad = 0, first = 0;
        auto scan = [&](auto values) {
            for (std::size_t i = 0; i < values.size(); ++i) {
                if (!std::isfinite(values[i]) && bad++ == 0) first = i;
            }
        };
        if (t.dtype == DType::F32) {
            scan(t.as<float>());
        } else if (t.dtype == DType::F64) {
            scan(t.as<double>());
        } else {
            std::vector<float> wide;
            for (std::uint16_t h : t.as<std::uint16_t>()) wide.push_back(bf16_to_f32(h));
            scan(wide);
        }
        if (bad > 0) {
            problems.push_back("tensor " + quote_name(t.name) + " has " + std::to_string(bad) + " NaN/Inf value" +
                               (bad == 1 ? "" : "s") + " (first at index " + std::to_string(first) + ")");
        }
    }
    for (const Tensor& t : tensors) {
        if (!expected_names.count(t.name)) problems.push_back("unexpected tensor " + quote_name(t.name));
    }
    for (const Tensor& t : tensors) {
        if (t.dtype != tensors.front().dtype) {
            problems.push_back("tensor " + quote_name(t.name) + " is " + dtype_name(t.dtype) + " but tensor " +
                               quote_name(tensors.front().name) + " is " + dtype_name(tensors.front().dtype) +
                               " (all tensors must share one dtype)");
            break;
        }
    }
    return problems;
}

}  // namespace modc::rt
