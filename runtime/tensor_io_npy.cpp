// Directories of .npy files, one per tensor: reading (with numpy's header format parsed
// exactly) and the header written before each tensor's data.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "runtime/tensor_io_format.hpp"

namespace modc::rt::detail {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

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

}  // namespace modc::rt::detail
