// Writing tensor files all or nothing: a temporary file or directory next to the target, written
// straight from the tensors' buffers and renamed into place once complete (tensor_io.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <system_error>

#include "runtime/tensor_io_format.hpp"

namespace modc::rt {

using namespace detail;

namespace {

namespace fs = std::filesystem;

// A fresh, unused-looking name next to `target`: ".<name>.tmp.<random hex>".
fs::path temp_sibling(const fs::path& target) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
    // Keep the name within NAME_MAX even for a long target name.
    return target.parent_path() / ("." + target.filename().string().substr(0, 200) + ".tmp." + suffix);
}

void fsync_path(const fs::path& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return;  // durability is best effort; the data itself was checked
    ::fsync(fd);
    ::close(fd);
}

// A new file (created exclusively) written with checked writes and synced on close.
class OutFile {
public:
    explicit OutFile(fs::path path) : path_(std::move(path)) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ < 0) fail(path_.string() + ": cannot create: " + errno_text(errno));
    }
    OutFile(const OutFile&) = delete;
    OutFile& operator=(const OutFile&) = delete;
    ~OutFile() {
        if (fd_ >= 0) ::close(fd_);
    }

    void write(const void* data, std::size_t n) {
        auto p = static_cast<const char*>(data);
        while (n > 0) {
            ssize_t k = ::write(fd_, p, n);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) fail(path_.string() + ": write failed: " + errno_text(errno));
            p += k;
            n -= static_cast<std::size_t>(k);
        }
    }
    void write(const std::string& s) { write(s.data(), s.size()); }
    // At `offset`, leaving the file position alone: safe from several threads at once.
    void write_at(const void* data, std::size_t n, std::uint64_t offset) {
        auto p = static_cast<const char*>(data);
        while (n > 0) {
            ssize_t k = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) fail(path_.string() + ": write failed: " + errno_text(errno));
            p += k;
            offset += static_cast<std::uint64_t>(k);
            n -= static_cast<std::size_t>(k);
        }
    }

    void close() {
        int fd = fd_;
        fd_ = -1;
        if (::fsync(fd) != 0 || ::close(fd) != 0) fail(path_.string() + ": write failed: " + errno_text(errno));
    }

private:
    fs::path path_;
    int fd_ = -1;
};

// Removes a temporary file or directory unless it was renamed into place.
class TempGuard {
public:
    explicit TempGuard(fs::path path) : path_(std::move(path)) {}
    TempGuard(const TempGuard&) = delete;
    TempGuard& operator=(const TempGuard&) = delete;
    ~TempGuard() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    void release() { path_.clear(); }

private:
    fs::path path_;
};

void require_parent_dir(const std::string& path, const fs::path& target) {
    std::error_code ec;
    if (!fs::is_directory(target.parent_path(), ec)) {
        fail(path + ": directory '" + target.parent_path().string() + "' does not exist");
    }
}

// Names and shapes, checked before anything is created.
void check_for_write(const std::string& path, const std::vector<TensorLayout>& layout, bool npy) {
    std::set<std::string> names;
    for (const TensorLayout& t : layout) {
        const std::string where = path + ": tensor " + quote_name(t.name);
        if (t.name.empty()) fail(path + ": a tensor has an empty name");
        if (!names.insert(t.name).second) fail(where + " appears twice");
        if (npy && (t.name.find('/') != std::string::npos || t.name.find('\0') != std::string::npos)) {
            fail(where + ": a name containing '/' or NUL cannot be a .npy file name");
        }
        if (!npy && t.name == "__metadata__") fail(where + ": the name is reserved in safetensors");
        if (npy && t.dtype == DType::BF16) {
            fail(where + " is BF16, which a .npy file cannot hold (numpy has no bfloat16); write a .safetensors file");
        }
        if (!byte_count(t.shape, t.dtype)) fail(where + " has invalid shape " + format_shape(t.shape));
    }
}

// The existing directory at `target` may be replaced only if it looks like an earlier
// output: nothing in it but .npy files.
void check_replaceable(const std::string& path, const fs::path& target) {
    try {
        for (const auto& entry : fs::directory_iterator(target)) {
            std::string name = entry.path().filename().string();
            if (!entry.is_regular_file() || !ends_with(name, ".npy")) {
                fail(path + ": refusing to replace the existing directory: it holds '" + name +
                     "', which is not a .npy file");
            }
        }
    } catch (const fs::filesystem_error& e) {
        fail(path + ": cannot list the existing directory: " + e.code().message());
    }
}

// Moves the finished directory `temp` to `target`, replacing an existing one atomically where
// the filesystem can exchange the two.
void move_directory_into_place(const std::string& path, const fs::path& temp, const fs::path& target, bool replacing,
                               TempGuard& guard) {
    std::error_code ec;
    if (!replacing) {
        if (std::rename(temp.c_str(), target.c_str()) != 0) {
            fail(path + ": cannot rename the finished directory into place: " + errno_text(errno));
        }
        guard.release();
    } else if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
        // Swapped atomically: `temp` now names the old directory, which the guard removes.
    } else if (errno == EINVAL || errno == ENOSYS) {
        // The filesystem cannot exchange: move the old directory aside, then the new one in.
        const fs::path old = temp_sibling(target);
        if (std::rename(target.c_str(), old.c_str()) != 0) {
            fail(path + ": cannot move the existing directory aside: " + errno_text(errno));
        }
        if (std::rename(temp.c_str(), target.c_str()) != 0) {
            int err = errno;
            std::rename(old.c_str(), target.c_str());
            fail(path + ": cannot rename the finished directory into place: " + errno_text(err));
        }
        guard.release();
        fs::remove_all(old, ec);
    } else {
        fail(path + ": cannot replace the existing directory: " + errno_text(errno));
    }
}

}  // namespace

// The temporary (a file, or a directory of .npy files) that commit() renames into place.
struct TensorFileWriter::Impl {
    std::string path;
    bool npy = false, replacing = false;
    fs::path target, temp;
    std::vector<TensorLayout> layout;
    std::vector<std::uint64_t> offsets;                  // safetensors: each tensor's data in the file
    std::unique_ptr<std::atomic<bool>[]> written;
    std::optional<TempGuard> guard;                      // declared before `file`: removes the temporary after it closes
    std::optional<OutFile> file;                         // safetensors
    // The temporary and the files in it, removed if a mapped input faults (mapped_file.hpp).
    std::mutex on_fault_mutex;
    std::vector<std::unique_ptr<RemoveOnFault>> on_fault;
    void remove_on_fault(const fs::path& p) {
        std::lock_guard<std::mutex> lock(on_fault_mutex);
        on_fault.push_back(std::make_unique<RemoveOnFault>(p.string()));
    }
};

TensorFileWriter::TensorFileWriter(const std::string& path, std::vector<TensorLayout> layout)
    : impl_(std::make_unique<Impl>()) {
    Impl& w = *impl_;
    if (path.empty()) fail("empty output path");
    std::error_code ec;
    w.path = path;
    w.npy = fs::is_directory(path, ec) || path.back() == '/' || fs::path(path).extension() != ".safetensors";
    check_for_write(path, layout, w.npy);
    w.layout = std::move(layout);
    w.written.reset(new std::atomic<bool>[w.layout.size()]);
    for (std::size_t i = 0; i < w.layout.size(); ++i) w.written[i] = false;
    if (!w.npy) {
        w.target = fs::absolute(path);
        require_parent_dir(path, w.target);
        const std::string header = safetensors_header(path, w.layout, w.offsets);
        w.temp = temp_sibling(w.target);
        w.file.emplace(w.temp);
        w.guard.emplace(w.temp);
        w.remove_on_fault(w.temp);
        w.file->write(header);
        return;
    }
    std::string trimmed = path;
    while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
    w.target = fs::absolute(trimmed).lexically_normal();
    const std::string leaf = w.target.filename().string();
    if (leaf.empty() || leaf == "." || leaf == "..") fail(path + ": name the output directory explicitly");
    require_parent_dir(path, w.target);
    const fs::file_status status = fs::status(w.target, ec);
    w.replacing = fs::exists(status);
    if (w.replacing && !fs::is_directory(status)) fail(path + ": exists and is not a directory");
    if (w.replacing) check_replaceable(path, w.target);
    w.temp = temp_sibling(w.target);
    if (::mkdir(w.temp.c_str(), 0777) != 0) fail(w.temp.string() + ": cannot create: " + errno_text(errno));
    w.guard.emplace(w.temp);
    w.remove_on_fault(w.temp);
}

TensorFileWriter::~TensorFileWriter() = default;

void TensorFileWriter::write(std::size_t index, const void* data) {
    Impl& w = *impl_;
    const TensorLayout& t = w.layout.at(index);
    if (w.written[index].exchange(true)) fail(w.path + ": tensor " + quote_name(t.name) + " written twice");
    const std::uint64_t size = *byte_count(t.shape, t.dtype);
    if (!w.npy) return w.file->write_at(data, size, w.offsets[index]);
    w.remove_on_fault(w.temp / (t.name + ".npy"));
    OutFile out(w.temp / (t.name + ".npy"));
    out.write(npy_header(t));
    out.write(data, size);
    out.close();
}

void TensorFileWriter::commit() {
    Impl& w = *impl_;
    for (std::size_t i = 0; i < w.layout.size(); ++i)
        if (!w.written[i]) fail(w.path + ": tensor " + quote_name(w.layout[i].name) + " was never written");
    if (!w.npy) {
        w.file->close();
        if (std::rename(w.temp.c_str(), w.target.c_str()) != 0) {
            fail(w.path + ": cannot rename the finished file into place: " + errno_text(errno));
        }
        w.guard->release();
    } else {
        fsync_path(w.temp, O_RDONLY | O_DIRECTORY);
        move_directory_into_place(w.path, w.temp, w.target, w.replacing, *w.guard);
    }
    w.on_fault.clear();
    fsync_path(w.target.parent_path(), O_RDONLY | O_DIRECTORY);
}

void write_tensors(const std::string& path, const std::vector<Tensor>& tensors) {
    std::vector<TensorLayout> layout;
    for (const Tensor& t : tensors) {
        if (std::string problem = data_size_problem(t); !problem.empty() && byte_count(t.shape, t.dtype))
            fail(path + ": " + problem);
        layout.push_back({t.name, t.dtype, t.shape});
    }
    TensorFileWriter writer(path, std::move(layout));
    for (std::size_t i = 0; i < tensors.size(); ++i) writer.write(i, tensors[i].data.data());
    writer.commit();
}

}  // namespace modc::rt
