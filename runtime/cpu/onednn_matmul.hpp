// runtime/cpu/onednn_matmul: oneDNN matmul primitives of fixed shapes, created once (when the
// dualizer is built) and bound once per thread to memory objects and a scratchpad of their own,
// so that running one allocates nothing on modc's side.
//
// Debian's oneDNN threads with OpenMP, and a primitive keeps the thread count it was created
// with (its primitive cache keys on it too): a primitive made for one thread runs inline in its
// caller, which is what items that run
// side by side (one per core) need; one made for all threads runs an item that has the machine
// to itself.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace modc::cpu::onednn {

// The element type of the inputs A and B; C is f32 and products accumulate in f32.
enum class Input { F32, BF16 };

// C (+)= A op(B): A m x k row-major (row stride lda); B k x n row-major (ldb), or with
// transpose_b the n x k matrix B^T row-major (ldb); C m x n row-major (ldc). With k_chunk > 0
// the sum over k runs in chunks of k_chunk, each added to C (the first as accumulate says): oneDNN's f32 kernels sum all of k
// in one chain, whose rounding made Gram Newton-Schulz 1.5x less accurate than OpenBLAS's on
// 768 x 768 products (bench/bf16_accuracy.py, docs/performance.md).
struct ProductShape {
    std::int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
    bool transpose_b = false;
    bool accumulate = false;
    std::int64_t k_chunk = 0;
    // With accumulate: C = A op(B) + sum_scale C. The scale is fixed when the primitive is made
    // (oneDNN 2.6's sum post-op); it does not change the scratchpad.
    float sum_scale = 1.0f;
};

class Product {
public:
    // threads: OpenMP threads of the primitive; 0: as many as OpenMP gives the caller.
    Product(const dnnl::engine& engine, const ProductShape& shape, Input input, int threads);
    // The scratchpad the product's primitives need (the most of any chunk: they run one after
    // another on one buffer), from their descriptors alone: nothing is created or allocated.
    static std::size_t scratchpad_bytes(const dnnl::engine& engine, const ProductShape& shape, Input input, int threads);
    // The same, from this product's own primitives.
    std::size_t scratchpad_bytes() const;

    // The primitives bound to one thread's memory objects and scratchpads.
    class Call {
    public:
        void operator()(const dnnl::stream& stream, const void* a, const void* b, float* c);

    private:
        friend class Product;
        struct Part {
            const dnnl::primitive* primitive = nullptr;
            dnnl::memory a, b, c, scratchpad;
            std::array<dnnl_exec_arg_t, 4> args{};
            std::int64_t a_offset = 0, b_offset = 0;  // bytes
        };
        std::vector<Part> parts_;
    };
    // scratchpad: at least scratchpad_bytes() of the caller's, for as long as the call lives.
    Call bind(void* scratchpad) const;

private:
    struct Part {  // one chunk of k
        dnnl::matmul::primitive_desc desc;
        dnnl::primitive primitive;
        std::int64_t a_offset = 0, b_offset = 0;  // bytes
    };
    dnnl::engine engine_;
    std::vector<Part> parts_;
};

// The upper triangle of the symmetric m x m product C = A B^T (A, B m x k, row-major): one
// product per block of rows, each from the diagonal on, (blocks + 1) / (2 blocks) of the full
// product's flops; the blocks below the diagonal are left as they were.
class UpperProduct {
public:
    // k_chunk: as ProductShape's.
    UpperProduct(const dnnl::engine& engine, std::int64_t m, std::int64_t k, Input input, int threads, std::int64_t k_chunk = 0);
    static std::size_t scratchpad_bytes(const dnnl::engine& engine, std::int64_t m, std::int64_t k, Input input, int threads,
                                        std::int64_t k_chunk = 0);

    class Call {
    public:
        void operator()(const dnnl::stream& stream, const void* a, const void* b, float* c);

    private:
        friend class UpperProduct;
        std::vector<Product::Call> blocks_;
        std::vector<std::int64_t> first_row_;
        std::int64_t m_ = 0, k_ = 0, element_size_ = 0;
    };
    Call bind(void* scratchpad) const;

private:
    std::vector<Product> blocks_;
    std::vector<std::int64_t> first_row_;
    std::int64_t m_ = 0, k_ = 0, element_size_ = 0;
};

// The number of row blocks UpperProduct uses for an m x m result.
int upper_blocks(std::int64_t m);

// One CPU engine for the process.
const dnnl::engine& cpu_engine();

}  // namespace modc::cpu::onednn
