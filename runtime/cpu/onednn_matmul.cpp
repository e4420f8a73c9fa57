#include "runtime/cpu/onednn_matmul.hpp"

#include <omp.h>

#include <algorithm>
#include <optional>

#include "support/diagnostics.hpp"

namespace modc::cpu::onednn {

namespace {

using dt = dnnl::memory::data_type;

// OpenMP's thread count in the calling thread for a scope: oneDNN fixes a primitive's thread
// count from it when the primitive is created.
class OmpThreads {
public:
    explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~OmpThreads() { omp_set_num_threads(saved_); }
    OmpThreads(const OmpThreads&) = delete;
    OmpThreads& operator=(const OmpThreads&) = delete;

private:
    int saved_;
};

dnnl::matmul::primitive_desc describe(const dnnl::engine& engine, const ProductShape& s, Input input) {
    const dt in = input == Input::BF16 ? dt::bf16 : dt::f32;
    dnnl::memory::desc a({s.m, s.k}, in, dnnl::memory::dims{s.lda, 1});
    dnnl::memory::desc b({s.k, s.n}, in, s.transpose_b ? dnnl::memory::dims{1, s.ldb} : dnnl::memory::dims{s.ldb, 1});
    dnnl::memory::desc c({s.m, s.n}, dt::f32, dnnl::memory::dims{s.ldc, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // ours, allocated once per thread
    if (s.accumulate) {
        dnnl::post_ops sum;
        sum.append_sum(s.sum_scale);
        attr.set_post_ops(sum);
    }
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, engine);
}

}  // namespace

const dnnl::engine& cpu_engine() {
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// The products of the chunks of k (one if k_chunk is 0), each with its operands' offsets in bytes.
struct Chunk {
    ProductShape shape;
    std::int64_t a_offset = 0, b_offset = 0;
};
std::vector<Chunk> chunks(const ProductShape& shape, Input input) {
    const std::int64_t element = input == Input::BF16 ? 2 : 4;
    const std::int64_t chunk = shape.k_chunk > 0 ? shape.k_chunk : shape.k;
    std::vector<Chunk> out;
    for (std::int64_t first = 0; first < shape.k; first += chunk) {
        ProductShape part = shape;
        part.k = std::min(chunk, shape.k - first);
        part.accumulate = shape.accumulate || first > 0;
        part.sum_scale = first > 0 ? 1.0f : shape.sum_scale;
        out.push_back({part, first * element, first * (shape.transpose_b ? 1 : shape.ldb) * element});
    }
    return out;
}

Product::Product(const dnnl::engine& engine, const ProductShape& shape, Input input, int threads) : engine_(engine) {
    std::optional<OmpThreads> scope;
    if (threads > 0) scope.emplace(threads);
    for (const auto& c : chunks(shape, input)) {
        auto desc = describe(engine, c.shape, input);
        parts_.push_back({desc, dnnl::matmul(desc), c.a_offset, c.b_offset});
    }
}

std::size_t Product::scratchpad_bytes(const dnnl::engine& engine, const ProductShape& shape, Input input, int threads) {
    std::optional<OmpThreads> scope;
    if (threads > 0) scope.emplace(threads);
    std::size_t most = 0;
    std::vector<std::pair<std::int64_t, bool>> seen;  // chunks differ only in k and accumulate
    for (const auto& c : chunks(shape, input)) {
        std::pair<std::int64_t, bool> key{c.shape.k, c.shape.accumulate};
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
        seen.push_back(key);
        most = std::max(most, describe(engine, c.shape, input).scratchpad_desc().get_size());
    }
    return most;
}

std::size_t Product::scratchpad_bytes() const {
    std::size_t most = 0;
    for (const auto& p : parts_) most = std::max(most, p.desc.scratchpad_desc().get_size());
    return most;
}

Product::Call Product::bind(void* scratchpad) const {
    Call call;
    for (const auto& p : parts_) {
        Call::Part part;
        part.primitive = &p.primitive;
        // Memory objects over no buffer yet: each run points them at its operands.
        part.a = dnnl::memory(p.desc.src_desc(), engine_, DNNL_MEMORY_NONE);
        part.b = dnnl::memory(p.desc.weights_desc(), engine_, DNNL_MEMORY_NONE);
        part.c = dnnl::memory(p.desc.dst_desc(), engine_, DNNL_MEMORY_NONE);
        part.scratchpad = dnnl::memory(p.desc.scratchpad_desc(), engine_, scratchpad);
        part.args = {dnnl_exec_arg_t{DNNL_ARG_SRC, part.a.get()}, dnnl_exec_arg_t{DNNL_ARG_WEIGHTS, part.b.get()},
                     dnnl_exec_arg_t{DNNL_ARG_DST, part.c.get()}, dnnl_exec_arg_t{DNNL_ARG_SCRATCHPAD, part.scratchpad.get()}};
        part.a_offset = p.a_offset;
        part.b_offset = p.b_offset;
        call.parts_.push_back(std::move(part));
    }
    return call;
}

void Product::Call::operator()(const dnnl::stream& stream, const void* a, const void* b, float* c) {
    for (auto& p : parts_) {
        // The C API: the C++ wrapper's execute() builds a map of arguments on every call.
        dnnl_memory_set_data_handle_v2(p.a.get(), const_cast<char*>(static_cast<const char*>(a)) + p.a_offset, nullptr);
        dnnl_memory_set_data_handle_v2(p.b.get(), const_cast<char*>(static_cast<const char*>(b)) + p.b_offset, nullptr);
        dnnl_memory_set_data_handle_v2(p.c.get(), c, nullptr);
        dnnl_status_t status = dnnl_primitive_execute(p.primitive->get(), stream.get(), static_cast<int>(p.args.size()), p.args.data());
        MODC_ASSERT(status == dnnl_success, "oneDNN matmul failed with status " + std::to_string(static_cast<int>(status)));
    }
}

int upper_blocks(std::int64_t m) {
    // Blocks of at least 192 rows keep oneDNN near its large-GEMM rate (measured: bench/cpu_matmul.cpp).
    return static_cast<int>(std::clamp<std::int64_t>(m / 192, 1, 4));
}

namespace {

// UpperProduct's blocks: the first row of each (and m after the last), and the product of each.
std::vector<std::int64_t> upper_first_rows(std::int64_t m) {
    const int blocks = upper_blocks(m);
    std::vector<std::int64_t> first_row;
    // Block boundaries on multiples of 16 rows (oneDNN's register blocking), the last one m.
    for (int i = 0; i < blocks; ++i) first_row.push_back((m * i / blocks) / 16 * 16);
    first_row.push_back(m);
    return first_row;
}
ProductShape upper_block(const std::vector<std::int64_t>& first_row, std::size_t i, std::int64_t m, std::int64_t k,
                         std::int64_t k_chunk) {
    std::int64_t first = first_row[i], rows = first_row[i + 1] - first;
    // C[rows, first:] = A[rows, :] B[first:, :]^T
    return ProductShape{rows, m - first, k, k, k, m, true, false, k_chunk};
}

}  // namespace

UpperProduct::UpperProduct(const dnnl::engine& engine, std::int64_t m, std::int64_t k, Input input, int threads,
                           std::int64_t k_chunk)
    : first_row_(upper_first_rows(m)), m_(m), k_(k), element_size_(input == Input::BF16 ? 2 : 4) {
    for (std::size_t i = 0; i + 1 < first_row_.size(); ++i)
        blocks_.emplace_back(engine, upper_block(first_row_, i, m, k, k_chunk), input, threads);
}

std::size_t UpperProduct::scratchpad_bytes(const dnnl::engine& engine, std::int64_t m, std::int64_t k, Input input,
                                           int threads, std::int64_t k_chunk) {
    auto first_row = upper_first_rows(m);
    std::size_t most = 0;
    for (std::size_t i = 0; i + 1 < first_row.size(); ++i)
        most = std::max(most, Product::scratchpad_bytes(engine, upper_block(first_row, i, m, k, k_chunk), input, threads));
    return most;
}

UpperProduct::Call UpperProduct::bind(void* scratchpad) const {
    Call call;
    for (const auto& b : blocks_) call.blocks_.push_back(b.bind(scratchpad));
    call.first_row_ = first_row_;
    call.m_ = m_;
    call.k_ = k_;
    call.element_size_ = element_size_;
    return call;
}

void UpperProduct::Call::operator()(const dnnl::stream& stream, const void* a, const void* b, float* c) {
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        std::int64_t first = first_row_[i];
        auto offset = static_cast<std::size_t>(first * k_ * element_size_);
        blocks_[i](stream, static_cast<const char*>(a) + offset, static_cast<const char*>(b) + offset, c + first * m_ + first);
    }
}

}  // namespace modc::cpu::onednn
