// Safetensors files (https://github.com/huggingface/safetensors): reading, validated whole, and
// the header written before the tensors' data.
#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "runtime/tensor_io_format.hpp"

namespace modc::rt::detail {

namespace {

using Json = nlohmann::ordered_json;  // keeps header order, which is the order tensors are written

// The reference implementation's bound on a safetensors header.
constexpr std::uint64_t kMaxHeaderSize = 100'000'000;

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

}  // namespace

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

}  // namespace modc::rt::detail
