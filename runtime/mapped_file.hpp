// A whole file mapped into memory for reading, as tensor_io reads gradients: no copy of the
// tensor data, and pages the kernel can drop and re-read under memory pressure.
//
// The mapping is private (MAP_PRIVATE): writing through it copies the written page and never
// changes the file. A file that shrinks while mapped (another process truncates it) would make
// reading the lost pages raise SIGBUS; while any MappedFile is alive a SIGBUS handler reports
// such a fault as "PROGRAM: error: FILE: the file shrank while it was being read ...; nothing
// was written" and exits with status 1, after removing the temporaries registered with
// RemoveOnFault (outputs are written to a temporary renamed into place, so none is left behind
// half-written). Faults outside mapped files keep their old handling.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace modc::rt {

class MappedFile {
public:
    // Maps `path` (regular file) whole; throws TensorError naming the file if it cannot.
    static std::shared_ptr<MappedFile> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::string& path() const { return path_; }
    std::uint64_t size() const { return size_; }
    std::byte* data() const { return data_; }  // nullptr for an empty file

private:
    MappedFile() = default;
    std::string path_;
    std::byte* data_ = nullptr;
    std::uint64_t size_ = 0;
    int slot_ = -1;  // where the SIGBUS handler finds this mapping, or -1
};

// A path the SIGBUS report removes before it exits (a file, or an empty directory once the
// files registered in it are gone), for as long as this object lives.
class RemoveOnFault {
public:
    explicit RemoveOnFault(std::string path);
    ~RemoveOnFault();
    RemoveOnFault(const RemoveOnFault&) = delete;
    RemoveOnFault& operator=(const RemoveOnFault&) = delete;

private:
    std::string path_;
    int slot_;
};

}  // namespace modc::rt
