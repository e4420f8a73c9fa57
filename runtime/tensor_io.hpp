// Tensor files for `modc dualize`: gradients in, updates out.
//
// Two formats, both keyed by tensor name (a weight path such as `blocks[2].attention.q`):
//   - a safetensors file (`*.safetensors`), https://github.com/huggingface/safetensors
//   - a directory of .npy files, one per tensor, file name = tensor name + ".npy"
// Tensors are F32, F64 or BF16 (bfloat16, safetensors only: numpy has no bfloat16, so a
// directory of .npy files holds F32 and F64 only, and writing BF16 there is refused with a
// TensorError before anything is created). Reading validates the file completely and throws
// TensorError naming the file and the tensor; the data of what it returns is read in place from
// the file mapped into memory (runtime/mapped_file.hpp), not copied. Writing is all or nothing
// (a temporary file or directory next to the target, renamed into place only once everything is
// written), straight from the tensors' buffers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace modc::rt {

enum class DType { F32, F64, BF16 };

std::size_t dtype_size(DType dtype);   // 4, 8 or 2
const char* dtype_name(DType dtype);   // "F32", "F64" or "BF16", as safetensors spells them

// "[256, 784]"; "[]" for a 0-d tensor.
std::string format_shape(const std::vector<std::int64_t>& shape);

class TensorError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A read-only or mutable view of a tensor's elements (C++17 has no std::span).
template <class T>
struct Span {
    T* ptr = nullptr;
    std::size_t count = 0;
    T* begin() const { return ptr; }
    T* end() const { return ptr + count; }
    std::size_t size() const { return count; }
    T& operator[](std::size_t i) const { return ptr[i]; }
};

// BF16 elements are viewed as their bits, std::uint16_t (support/bf16.hpp converts them).
template <class T>
constexpr DType dtype_of() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::uint16_t>,
                  "tensors hold float (F32), double (F64) or std::uint16_t (BF16 bits)");
    return std::is_same_v<T, float> ? DType::F32 : std::is_same_v<T, double> ? DType::F64 : DType::BF16;
}

class MappedFile;

// A tensor's bytes: a buffer of its own, or a view into a mapped file that it keeps mapped.
// A view is writable: the mapping is private, so written pages are copied and the file never
// changes. resize() always leaves a buffer of its own.
class Bytes {
public:
    Bytes() = default;
    Bytes(std::vector<std::byte> owned) : owned_(std::move(owned)) {}  // NOLINT: implicit, as a vector was
    Bytes(std::shared_ptr<const MappedFile> file, std::byte* view, std::size_t size)
        : file_(std::move(file)), view_(view), view_size_(size) {}

    std::byte* data() { return file_ ? view_ : owned_.data(); }
    const std::byte* data() const { return file_ ? view_ : owned_.data(); }
    std::size_t size() const { return file_ ? view_size_ : owned_.size(); }
    bool empty() const { return size() == 0; }
    bool mapped() const { return file_ != nullptr; }
    void resize(std::size_t n);
    // A view's whole pages dropped from memory, read again from the file when next touched (a
    // buffer of its own: nothing). Only for a view not written through: written pages would
    // return to the file's bytes.
    void release_pages();

    friend bool operator==(const Bytes& a, const Bytes& b);
    friend bool operator!=(const Bytes& a, const Bytes& b) { return !(a == b); }

private:
    std::vector<std::byte> owned_;
    std::shared_ptr<const MappedFile> file_;
    std::byte* view_ = nullptr;
    std::size_t view_size_ = 0;
};

// A dense row-major tensor; `data` holds numel() * dtype_size(dtype) bytes in host
// (little-endian) order, aligned for the dtype.
struct Tensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;  // empty for a 0-d (scalar) tensor
    Bytes data;

    // Product of the shape: 1 for a 0-d tensor, 0 if any dimension is 0.
    std::int64_t numel() const;

    // The elements as T (float for F32, double for F64, std::uint16_t for BF16); throws TensorError if T does not
    // match the dtype or the data size does not match the shape.
    template <class T>
    Span<T> as() {
        check_view(dtype_of<T>());
        return {reinterpret_cast<T*>(data.data()), data.size() / sizeof(T)};
    }
    template <class T>
    Span<const T> as() const {
        check_view(dtype_of<T>());
        return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
    }

    // A tensor holding a copy of `values` (which must have product(shape) elements).
    template <class T>
    static Tensor from(std::string name, std::vector<std::int64_t> shape,
                       const std::vector<T>& values) {
        Tensor t{std::move(name), dtype_of<T>(), std::move(shape), {}};
        t.data.resize(values.size() * sizeof(T));
        auto out = t.as<T>();  // checks values.size() against the shape
        for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
        return t;
    }

private:
    void check_view(DType wanted) const;
};

// An expected tensor: the weight path and the weight's shape.
struct TensorSpec {
    std::string name;
    std::vector<std::int64_t> shape;
};

// Reads a safetensors file, or a directory of .npy files if `path` is a directory (files
// not ending in ".npy" are ignored; tensors come back sorted by name). Safetensors tensors
// come back in file order. Throws TensorError on anything malformed or unsupported. The
// tensors are views of the mapped files (copied only where the file misaligns them for their
// dtype).
std::vector<Tensor> read_tensors(const std::string& path);

// Writes `tensors`, in the given order, all or nothing. The format comes from the path: an
// existing directory, a path ending in '/', or a path without the ".safetensors" extension
// is a directory of .npy files; otherwise a safetensors file. An existing directory is
// replaced only after everything is written, and only if it holds nothing but .npy files.
// Throws TensorError (bad names, duplicates, inconsistent tensors, I/O errors); on error
// the target is untouched and no temporary is left behind.
void write_tensors(const std::string& path, const std::vector<Tensor>& tensors);

// A tensor to be written: its name, dtype and shape.
struct TensorLayout {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
};

// A tensor file written as its tensors become ready, in any order and from any thread, all or
// nothing, in the format write_tensors picks from the path (write_tensors is this, in order).
// The constructor checks the layout as write_tensors does and creates the temporary; write()
// puts one tensor's bytes in place straight from `data` (each tensor once); commit() checks that
// every tensor was written, syncs and renames the result into place. Destroyed before commit()
// (an error, an exception), it removes the temporary and leaves the target untouched.
class TensorFileWriter {
public:
    TensorFileWriter(const std::string& path, std::vector<TensorLayout> layout);
    ~TensorFileWriter();
    TensorFileWriter(const TensorFileWriter&) = delete;
    TensorFileWriter& operator=(const TensorFileWriter&) = delete;
    void write(std::size_t index, const void* data);  // layout[index]'s numel * dtype_size bytes
    void commit();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The same tensor with its elements converted to `dtype`: exact to F32 or F64 from BF16 and
// to F64 from F32; to BF16 rounded to nearest even (support/bf16.hpp), from F64 through F32.
Tensor convert(const Tensor& tensor, DType dtype);

// Checks tensors against the expected names and shapes, that all share one dtype (F32, F64
// or BF16), and that all values are finite. Returns one message per problem, each naming the
// tensor; empty means fine.
std::vector<std::string> validate(const std::vector<Tensor>& tensors,
                                  const std::vector<TensorSpec>& expected);

}  // namespace modc::rt
