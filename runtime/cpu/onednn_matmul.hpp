// runtime/cpu/onednn_matmul: oneDNN matmul primitives of fixed shapes, created once (when the
// dualizer is built) and bound once per thread to memory objects and a scratchpad of their own,
// so that running one allocates nothing on modc's side.
//
// Debian's oneDNN threads with OpenMP, and a primitive keeps the thread count it was created
// with: a primitive made for one thread runs inline in its caller, which is what items that run
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
// transpose_b the n x k matrix B^T row-major (ldb); C m x n row-major (ldc).
struct ProductShape {
    std::int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
    bool transpose_b = false;
    bool accumulate = false;
};

class Product {
public:
    // threads: OpenMP threads of the primitive; 0: as many as OpenMP gives the caller.
    Product(const dnnl::engine& engine, const ProductShape& shape, Input input, int threads);

    // The primitive bound to one thread's memory objects and scratchpad.
    class Call {
    public:
        void operator()(const dnnl::stream& stream, const void* a, const void* b, float* c);

    private:
        friend class Product;
        const dnnl::primitive* primitive_ = nullptr;
        dnnl::memory a_, b_, c_, scratchpad_;
        std::array<dnnl_exec_arg_t, 4> args_{};
    };
    Call bind() const;

private:
    dnnl::engine engine_;
    dnnl::matmul::primitive_desc desc_;
    dnnl::primitive primitive_;
};

// The upper triangle of the symmetric m x m product C = A B^T (A, B m x k, row-major): one
// product per block of rows, each from the diagonal on, (blocks + 1) / (2 blocks) of the full
// product's flops; the blocks below the diagonal are left as they were.
class UpperProduct {
public:
    UpperProduct(const dnnl::engine& engine, std::int64_t m, std::int64_t k, Input input, int threads);

    class Call {
    public:
        void operator()(const dnnl::stream& stream, const void* a, const void* b, float* c);

    private:
        friend class UpperProduct;
        std::vector<Product::Call> blocks_;
        std::vector<std::int64_t> first_row_;
        std::int64_t m_ = 0, k_ = 0, element_size_ = 0;
    };
    Call bind() const;

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
