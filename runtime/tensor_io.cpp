// Safetensors files and .npy directories; see tensor_io.hpp.
#include "runtime/tensor_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "runtime/mapped_file.hpp"
#include "support/bf16.hpp"

// Both file formats are little-endian and tensor data is used in place.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tensor I/O assumes a little-endian host");
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= alignof(double), "tensor data must be aligned");

namespace modc::rt {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // keeps header order, which is the order tensors are written

// The reference implementation's bound on a safetensors header.
constexpr std::uint64_t kMaxHeaderSize = 100'000'000;
const std::string kNpyMagic = "\x93NUMPY";

[[noreturn]] void fail(const std::string& message) { throw TensorError(message); }

// 'name', with control characters (NUL above all: messages are C strings) shown as \xNN.
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

// product(shape) * element size, or nullopt for a negative dimension or an overflow.
std::optional<std::uint64_t> byte_count(const std::vector<std::int64_t>& shape, DType dtype) {
    std::uint64_t n = dtype_size(dtype);
    for (std::int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return std::nullopt;
    }
    if (n > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return n;
}

// "tensor 'x' has 12 data bytes, but shape [2, 3] of F32 needs 24", or "" if consistent.
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

// ---------------------------------------------------------------------------------------
// Reading

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

// The header dict of a .npy file, a Python literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
};

// Parses exactly the literals numpy writes: strings, True/False, tuples of integers.
class NpyHeaderParser {
public:
    NpyHeaderParser(const std::string& text, std::string where) : s_(text), where_(std::move(where)) {}

    NpyHeader parse() {
        NpyHeader h;
        std::set<std::string> seen;
        skip_ws();
        expect('{', "the header is not a dict");
        skip_ws();
        while (peek() != '}') {
            std::string key = parse_string();
            if (!seen.insert(key).second) error("key " + quote_name(key) + " appears twice in the header");
            skip_ws();
            expect(':', "expected ':' after " + quote_name(key));
            skip_ws();
            if (key == "descr") {
                if (peek() == '[') error("structured dtypes are not supported (only float32 '<f4' and float64 '<f8' are)");
                h.descr = parse_string();
            } else if (key == "fortran_order") {
                h.fortran_order = parse_bool();
            } else if (key == "shape") {
                h.shape = parse_shape();
            } else {
                error("unexpected key " + quote_name(key) + " in the header");
            }
            skip_ws();
            if (peek() == ',') {
                ++i_;
                skip_ws();
            } else if (peek() != '}') {
                error("expected ',' or '}' in the header dict");
            }
        }
        ++i_;
        skip_ws();
        if (i_ != s_.size()) error("unexpected text after the header dict");
        for (const char* key : {"descr", "fortran_order", "shape"}) {
            if (!seen.count(key)) error(std::string("the header has no '") + key + "'");
        }
        return h;
    }

private:
    [[noreturn]] void error(const std::string& message) const { fail(where_ + ": malformed .npy header: " + message); }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    void skip_ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    void expect(char c, const std::string& message) {
        if (peek() != c) error(message);
        ++i_;
    }

    std::string parse_string() {
        char quote = peek();
        if (quote != '\'' && quote != '"') error("expected a quoted string");
        std::size_t end = s_.find(quote, ++i_);
        if (end == std::string::npos) error("unterminated string");
        std::string value = s_.substr(i_, end - i_);
        if (value.find('\\') != std::string::npos) error("escapes in strings are not supported");
        i_ = end + 1;
        return value;
    }

    bool parse_bool() {
        for (bool b : {true, false}) {
            const std::string word = b ? "True" : "False";
            if (s_.compare(i_, word.size(), word) == 0) {
                i_ += word.size();
                return b;
            }
        }
        error("'fortran_order' must be True or False");
    }

    std::vector<std::int64_t> parse_shape() {
        std::vector<std::int64_t> shape;
        expect('(', "'shape' must be a tuple of integers");
        skip_ws();
        while (peek() != ')') {
            std::size_t start = i_;
            while (std::isdigit(static_cast<unsigned char>(peek()))) ++i_;
            if (i_ == start) error("'shape' must be a tuple of non-negative integers");
            std::int64_t d = 0;
            for (std::size_t k = start; k < i_; ++k) {
                if (__builtin_mul_overflow(d, 10, &d) || __builtin_add_overflow(d, s_[k] - '0', &d)) {
                    error("dimension " + s_.substr(start, i_ - start) + " in 'shape' is too large");
                }
            }
            if (peek() == 'L') ++i_;  // Python 2 long literal
            shape.push_back(d);
            skip_ws();
            if (peek() == ',') {
                ++i_;
                skip_ws();
            } else if (peek() != ')') {
                error("expected ',' or ')' in 'shape'");
            }
        }
        ++i_;
        return shape;
    }

    const std::string& s_;
    std::string where_;
    std::size_t i_ = 0;
};

Tensor read_npy(const std::string& file, std::string name) {
    InFile in(file);
    if (in.size() < 10) fail(file + ": not a .npy file (" + std::to_string(in.size()) + " bytes)");
    unsigned char prefix[12] = {};
    in.read(prefix, 10);
    if (std::string(reinterpret_cast<char*>(prefix), 6) != kNpyMagic) fail(file + ": not a .npy file (bad magic)");
    const int major = prefix[6], minor = prefix[7];
    std::uint64_t header_start = 10, header_len = 0;
    if (major == 1 && minor == 0) {
        header_len = load_le(prefix + 8, 2);
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (in.size() < 12) fail(file + ": truncated .npy header");
        in.read(prefix + 10, 2);
        header_start = 12;
        header_len = load_le(prefix + 8, 4);
    } else {
        fail(file + ": unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
             " (1.0, 2.0 and 3.0 are supported)");
    }
    if (header_len > in.size() - header_start) {
        fail(file + ": .npy header length " + std::to_string(header_len) + " runs past the end of the file");
    }
    std::string text(header_len, '\0');
    in.read(text.data(), header_len);
    NpyHeader h = NpyHeaderParser(text, file).parse();

    Tensor t;
    t.name = std::move(name);
    if (h.descr == "<f4") {
        t.dtype = DType::F32;
    } else if (h.descr == "<f8") {
        t.dtype = DType::F64;
    } else if (h.descr == ">f4" || h.descr == ">f8") {
        fail(file + ": big-endian data ('" + h.descr + "') is not supported; save a little-endian array, e.g. arr.astype('<" +
             h.descr.substr(1) + "')");
    } else {
        fail(file + ": unsupported dtype '" + h.descr + "' (only float32 '<f4' and float64 '<f8' are supported)");
    }
    if (h.fortran_order) {
        fail(file + ": Fortran-order (column-major) data is not supported; save a C-order array, e.g. "
                    "np.ascontiguousarray(arr)");
    }
    t.shape = std::move(h.shape);
    auto needed = byte_count(t.shape, t.dtype);
    if (!needed) fail(file + ": shape " + format_shape(t.shape) + " is too large");
    const std::uint64_t present = in.size() - header_start - header_len;
    if (present != *needed) {
        fail(file + ": shape " + format_shape(t.shape) + " of '" + h.descr + "' needs " + std::to_string(*needed) +
             " data bytes, but the file has " + std::to_string(present) +
             (present < *needed ? " (truncated)" : " (trailing data)"));
    }
    t.data = in.take(*needed, t.dtype);
    return t;
}

std::vector<Tensor> read_npy_dir(const std::string& dir) {
    std::vector<std::pair<std::string, std::string>> files;  // tensor name, file path
    try {
        for (const auto& entry : fs::directory_iterator(dir)) {
            std::string file_name = entry.path().filename().string();
            if (!ends_with(file_name, ".npy")) continue;
            if (!entry.is_regular_file()) fail(entry.path().string() + ": not a regular file");
            files.emplace_back(file_name.substr(0, file_name.size() - 4), entry.path().string());
        }
    } catch (const fs::filesystem_error& e) {
        fail(dir + ": cannot list directory: " + e.code().message());
    }
    std::sort(files.begin(), files.end());
    std::vector<Tensor> tensors;
    for (auto& [name, file] : files) tensors.push_back(read_npy(file, name));
    return tensors;
}

// Reads header["key"] of a tensor entry, failing if it is absent.
const Json& field(const Json& entry, const char* key, const std::string& where) {
    auto it = entry.find(key);
    if (it == entry.end()) fail(where + ": header entry has no \"" + std::string(key) + "\"");
    return *it;
}

// A JSON array of non-negative integers that fit in int64, of `size` elements if given.
std::optional<std::vector<std::int64_t>> integer_array(const Json& j, std::optional<std::size_t> size = std::nullopt) {
    if (!j.is_array() || (size && j.size() != *size)) return std::nullopt;
    std::vector<std::int64_t> out;
    for (const Json& e : j) {
        if (!e.is_number_unsigned() || e.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        out.push_back(e.get<std::int64_t>());
    }
    return out;
}

std::vector<Tensor> read_safetensors(const std::string& path) {
    InFile in(path);
    const std::uint64_t file_size = in.size();
    unsigned char size_field[8];
    if (file_size < 8) {
        fail(path + ": not a safetensors file (" + std::to_string(file_size) +
             " bytes, too short for the 8-byte header size)");
    }
    in.read(size_field, 8);
    if (std::string(reinterpret_cast<char*>(size_field), 6) == kNpyMagic) {
        fail(path + ": this is a single .npy file; pass a directory of .npy files (one per tensor) or a .safetensors file");
    }
    const std::uint64_t header_size = load_le(size_field, 8);
    if (header_size > kMaxHeaderSize) {
        fail(path + ": header size " + std::to_string(header_size) + " exceeds the limit of " +
             std::to_string(kMaxHeaderSize) + " bytes (not a safetensors file?)");
    }
    if (header_size > file_size - 8) {
        fail(path + ": header size " + std::to_string(header_size) + " exceeds the " + std::to_string(file_size - 8) +
             " bytes that follow it (truncated, or not a safetensors file?)");
    }
    const std::uint64_t buffer_size = file_size - 8 - header_size;

    std::string text(header_size, '\0');
    in.read(text.data(), header_size);
    Json header;
    std::optional<std::string> duplicate;
    try {
        header = Json::parse(text, [&, seen = std::set<std::string>()](int depth, Json::parse_event_t event, Json& parsed) mutable {
            if (depth == 1 && event == Json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second) {
                duplicate = parsed.get<std::string>();
            }
            return true;
        });
    } catch (const Json::parse_error& e) {
        std::string what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
        fail(path + ": header is not valid JSON: " + what.substr(what.find(']') + 2));
    }
    if (!header.is_object()) fail(path + ": header is not a JSON object");
    if (duplicate) fail(path + ": " + quote_name(*duplicate) + " appears twice in the header");

    struct Entry {
        Tensor tensor;
        std::uint64_t begin, end;
    };
    std::vector<Entry> entries;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            if (!info.is_object()) fail(path + ": \"__metadata__\" is not a JSON object");
            for (const auto& [key, value] : info.items()) {
                if (!value.is_string()) fail(path + ": \"__metadata__\" value for " + quote_name(key) + " is not a string");
            }
            continue;
        }
        const std::string where = path + ": tensor " + quote_name(name);
        if (!info.is_object()) fail(where + ": header entry is not a JSON object");
        Entry e{Tensor{name, DType::F32, {}, {}}, 0, 0};

        const Json& dtype = field(info, "dtype", where);
        if (!dtype.is_string()) fail(where + ": \"dtype\" is not a string");
        if (dtype == "F32") {
            e.tensor.dtype = DType::F32;
        } else if (dtype == "F64") {
            e.tensor.dtype = DType::F64;
        } else if (dtype == "BF16") {
            e.tensor.dtype = DType::BF16;
        } else {
            fail(where + " has unsupported dtype " + dtype.get<std::string>() + " (only F32, F64 and BF16 are supported)");
        }

        const Json& shape = field(info, "shape", where);
        auto dims = integer_array(shape);
        if (!dims) fail(where + ": \"shape\" must be an array of non-negative integers, got " + shape.dump());
        e.tensor.shape = std::move(*dims);

        const Json& offsets_json = field(info, "data_offsets", where);
        auto offsets = integer_array(offsets_json, 2);
        if (!offsets) {
            fail(where + ": \"data_offsets\" must be [begin, end] with non-negative integers, got " + offsets_json.dump());
        }
        e.begin = (*offsets)[0];
        e.end = (*offsets)[1];
        const std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
        if (e.begin > e.end) fail(where + ": data_offsets " + range + " end before they begin");
        if (e.end > buffer_size) {
            fail(where + ": data_offsets " + range + " run past the end of the " + std::to_string(buffer_size) +
                 "-byte data buffer");
        }
        auto needed = byte_count(e.tensor.shape, e.tensor.dtype);
        if (!needed) fail(where + ": shape " + format_shape(e.tensor.shape) + " is too large");
        if (e.end - e.begin != *needed) {
            fail(where + ": data_offsets " + range + " span " + std::to_string(e.end - e.begin) + " bytes, but shape " +
                 format_shape(e.tensor.shape) + " of " + dtype_name(e.tensor.dtype) + " needs " + std::to_string(*needed));
        }
        entries.push_back(std::move(e));
    }

    // The tensors must tile the data buffer exactly: no overlaps, no gaps, nothing after.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t pos = 0;
    const Entry* previous = nullptr;
    for (const Entry& e : entries) {
        if (e.begin < pos) {
            fail(path + ": tensor " + quote_name(e.tensor.name) + " (bytes " + std::to_string(e.begin) + ".." +
                 std::to_string(e.end) + ") overlaps tensor " + quote_name(previous->tensor.name) + " (bytes " +
                 std::to_string(previous->begin) + ".." + std::to_string(previous->end) + ")");
        }
        if (e.begin > pos) {
            fail(path + ": bytes " + std::to_string(pos) + ".." + std::to_string(e.begin) +
                 " of the data buffer belong to no tensor (gap before tensor " + quote_name(e.tensor.name) + ")");
        }
        pos = e.end;
        previous = &e;
    }
    if (pos != buffer_size) {
        fail(path + ": the last " + std::to_string(buffer_size - pos) +
             " bytes of the data buffer belong to no tensor (trailing data)");
    }

    std::vector<Tensor> tensors;
    for (Entry& e : entries) {  // contiguous, so the data is taken front to back
        e.tensor.data = in.take(e.end - e.begin, e.tensor.dtype);
        tensors.push_back(std::move(e.tensor));
    }
    return tensors;
}

// ---------------------------------------------------------------------------------------
// Writing

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

std::string safetensors_header(const std::string& path, const std::vector<TensorLayout>& layout,
                               std::vector<std::uint64_t>& offsets) {
    Json header = Json::object();
    std::uint64_t offset = 0;
    for (const TensorLayout& t : layout) {
        const std::uint64_t size = *byte_count(t.shape, t.dtype);
        Json entry = Json::object();
        entry["dtype"] = dtype_name(t.dtype);
        entry["shape"] = t.shape;
        entry["data_offsets"] = Json::array({offset, offset + size});
        header[t.name] = std::move(entry);
        offsets.push_back(offset);
        offset += size;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const Json::type_error&) {
        fail(path + ": tensor names must be valid UTF-8");
    }
    text.append((8 - text.size() % 8) % 8, ' ');  // as the reference implementation pads
    for (auto& o : offsets) o += 8 + text.size();  // from the start of the file
    return store_le(text.size(), 8) + text;
}

std::string npy_header(const TensorLayout& t) {
    std::string shape = "(";
    for (std::size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
    shape += t.shape.size() == 1 ? ",)" : ")";
    const std::string dict = std::string("{'descr': '") + (t.dtype == DType::F32 ? "<f4" : "<f8") +
                             "', 'fortran_order': False, 'shape': " + shape + ", }";
    // Version 1.0 has a 2-byte header length, 2.0 a 4-byte one; numpy aligns the data to 64.
    for (int version = 1; version <= 2; ++version) {
        const std::size_t prefix = version == 1 ? 10 : 12;
        const std::size_t pad = (64 - (prefix + dict.size() + 1) % 64) % 64;
        const std::size_t len = dict.size() + pad + 1;
        if (version == 1 && len > 0xffff) continue;
        return kNpyMagic + static_cast<char>(version) + '\0' + store_le(len, version == 1 ? 2 : 4) + dict +
               std::string(pad, ' ') + "\n";
    }
    fail("unreachable");
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
