// The parts the tensor file formats share (internal to runtime/: tensor_io*.cpp): errors,
// names in messages, sizes, little-endian numbers, the mapped reader; and each format's entry
// points, which tensor_io.cpp's read_tensors and tensor_io_writer.cpp's writer dispatch to.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/mapped_file.hpp"
#include "runtime/tensor_io.hpp"

// Both file formats are little-endian and tensor data is used in place.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tensor I/O assumes a little-endian host");
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= alignof(double), "tensor data must be aligned");

namespace modc::rt::detail {

inline const std::string kNpyMagic = "\x93NUMPY";

[[noreturn]] inline void fail(const std::string& message) { throw TensorError(message); }

// 'name', with control characters (NUL above all: messages are C strings) shown as \xNN.
std::string quote_name(const std::string& name);
std::string errno_text(int err);
bool ends_with(const std::string& s, const std::string& suffix);
// product(shape) * element size, or nullopt for a negative dimension or an overflow.
std::optional<std::uint64_t> byte_count(const std::vector<std::int64_t>& shape, DType dtype);
// "tensor 'x' has 12 data bytes, but shape [2, 3] of F32 needs 24", or "" if consistent.
std::string data_size_problem(const Tensor& t);
std::uint64_t load_le(const unsigned char* p, int bytes);
std::string store_le(std::uint64_t v, int bytes);

// A mapped file read front to back: headers are copied out, tensor data is viewed in place.
class InFile {
public:
    explicit InFile(const std::string& path) : file_(MappedFile::open(path)) {}
    std::uint64_t size() const { return file_->size(); }
    void read(void* out, std::uint64_t n) {
        if (n > size() - pos_) fail(file_->path() + ": read past the end of the file");
        std::memcpy(out, file_->data() + pos_, n);
        pos_ += n;
    }
    // The next n bytes as a tensor of `dtype`: a view of the mapping, or a copy where the file
    // does not align them for the dtype (safetensors does not promise it).
    Bytes take(std::uint64_t n, DType dtype) {
        if (n > size() - pos_) fail(file_->path() + ": read past the end of the file");
        std::byte* p = file_->data() + pos_;
        pos_ += n;
        if (reinterpret_cast<std::uintptr_t>(p) % dtype_size(dtype) == 0) return Bytes(file_, p, n);
        return std::vector<std::byte>(p, p + n);
    }

private:
    std::shared_ptr<MappedFile> file_;
    std::uint64_t pos_ = 0;
};

// Each format (tensor_io_npy.cpp, tensor_io_safetensors.cpp).
std::vector<Tensor> read_npy_dir(const std::string& dir);
std::vector<Tensor> read_safetensors(const std::string& path);
// The bytes before a tensor's data in its .npy file.
std::string npy_header(const TensorLayout& t);
// The 8-byte size and the JSON header of a safetensors file of `layout`; offsets receives each
// tensor's data offset from the start of the file. path: for messages.
std::string safetensors_header(const std::string& path, const std::vector<TensorLayout>& layout,
                               std::vector<std::uint64_t>& offsets);

}  // namespace modc::rt::detail
