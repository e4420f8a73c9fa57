// Tensor files: safetensors and .npy directories (runtime/tensor_io). Safetensors bytes are
// built by hand here; .npy interoperability is checked against numpy when it is installed.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <sstream>

#include "support/bf16.hpp"
#include "runtime/tensor_io.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace modc::rt;
using Catch::Matchers::Contains;

namespace {

using modc::test::read;
using modc::test::TempDir;

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

std::set<std::string> listing(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
    return names;
}

std::string le(std::uint64_t v, int bytes) {
    std::string out;
    for (int i = 0; i < bytes; ++i, v >>= 8) out.push_back(static_cast<char>(v & 0xff));
    return out;
}

template <class T>
std::string raw(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::string safetensors(const std::string& header, const std::string& data) {
    return le(header.size(), 8) + header + data;
}

// A .npy file as numpy lays it out: the header padded so the data starts at a multiple of 64.
std::string npy(const std::string& dict, const std::string& data, int major = 1) {
    const std::size_t prefix = major == 1 ? 10 : 12;
    const std::size_t pad = (64 - (prefix + dict.size() + 1) % 64) % 64;
    const std::size_t len = dict.size() + pad + 1;
    return std::string("\x93NUMPY") + static_cast<char>(major) + '\0' + le(len, major == 1 ? 2 : 4) + dict +
           std::string(pad, ' ') + "\n" + data;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const TensorError& e) {
        return e.what();
    }
    return "<no error>";
}

// i * 0.5 - 3: exactly representable in float and double, the same on the numpy side.
template <class T>
std::vector<T> ramp(std::size_t n) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(i * 0.5 - 3);
    return v;
}

template <class T>
std::vector<T> values(const Tensor& t) {
    auto s = t.as<T>();
    return std::vector<T>(s.begin(), s.end());
}

const Tensor& find(const std::vector<Tensor>& tensors, const std::string& name) {
    for (const Tensor& t : tensors) {
        if (t.name == name) return t;
    }
    FAIL("no tensor " << name);
    static const Tensor none;
    return none;
}

std::vector<Tensor> sample_tensors() {
    return {Tensor::from<float>("blocks[2].attention.q", {2, 3}, ramp<float>(6)),
            Tensor::from<float>("linear[0]", {4}, ramp<float>(4)),
            Tensor::from<float>("scale", {}, {2.5f}),
            Tensor::from<float>("empty", {0, 5}, {})};
}

}  // namespace

TEST_CASE("tensor helpers", "[tensor_io]") {
    Tensor t = Tensor::from<double>("w", {2, 3}, ramp<double>(6));
    CHECK(t.dtype == DType::F64);
    CHECK(t.numel() == 6);
    CHECK(t.data.size() == 48);
    CHECK(values<double>(t) == ramp<double>(6));
    t.as<double>()[5] = 7.0;
    CHECK(t.as<double>()[5] == 7.0);
    CHECK(Tensor::from<float>("s", {}, {1.f}).numel() == 1);
    CHECK(Tensor::from<float>("z", {3, 0}, {}).numel() == 0);
    CHECK(format_shape({256, 784}) == "[256, 784]");
    CHECK(format_shape({}) == "[]");
    CHECK(error_of([&] { t.as<float>(); }) == "tensor 'w' is F64, not F32");
    CHECK(error_of([] { Tensor::from<float>("x", {2, 2}, {1.f, 2.f}); }) ==
          "tensor 'x' has 8 data bytes, but shape [2, 2] of F32 needs 16");
}

TEST_CASE("safetensors: a hand-built file is read in data order", "[tensor_io]") {
    TempDir dir;
    const std::string header =
        R"({"b": {"dtype": "F64", "shape": [2], "data_offsets": [12, 28]},)"
        R"( "__metadata__": {"format": "pt"},)"
        R"( "z": {"dtype": "F32", "shape": [0, 3], "data_offsets": [28, 28]},)"
        R"( "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},)"
        R"( "s": {"dtype": "F32", "shape": [], "data_offsets": [28, 32]}}   )";
    const std::string data = raw<float>({1.5f, -2.f, 3.f}) + raw<double>({0.25, 1e300}) + raw<float>({9.f});
    write_file(dir / "g.safetensors", safetensors(header, data));

    auto tensors = read_tensors(dir / "g.safetensors");
    REQUIRE(tensors.size() == 4);
    CHECK(tensors[0].name == "a");
    CHECK(tensors[1].name == "b");
    CHECK(tensors[2].name == "z");
    CHECK(tensors[3].name == "s");
    CHECK(values<float>(tensors[0]) == std::vector<float>{1.5f, -2.f, 3.f});
    CHECK(tensors[1].dtype == DType::F64);
    CHECK(values<double>(tensors[1]) == std::vector<double>{0.25, 1e300});
    CHECK(tensors[2].shape == std::vector<std::int64_t>{0, 3});
    CHECK(tensors[2].data.empty());
    CHECK(tensors[3].shape.empty());
    CHECK(values<float>(tensors[3]) == std::vector<float>{9.f});
}

TEST_CASE("safetensors: written as the reference implementation lays it out", "[tensor_io]") {
    TempDir dir;
    const std::string path = dir / "u.safetensors";
    auto tensors = sample_tensors();
    write_tensors(path, tensors);

    const std::string bytes = read(path);
    const std::string json =
        R"({"blocks[2].attention.q":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
        R"("linear[0]":{"dtype":"F32","shape":[4],"data_offsets":[24,40]},)"
        R"("scale":{"dtype":"F32","shape":[],"data_offsets":[40,44]},)"
        R"("empty":{"dtype":"F32","shape":[0,5],"data_offsets":[44,44]}})";
    const std::string header = json + std::string((8 - json.size() % 8) % 8, ' ');
    CHECK(header.size() % 8 == 0);
    CHECK(bytes == safetensors(header, raw(ramp<float>(6)) + raw(ramp<float>(4)) + raw<float>({2.5f})));

    auto back = read_tensors(path);
    REQUIRE(back.size() == tensors.size());
    for (std::size_t i = 0; i < back.size(); ++i) {
        CHECK(back[i].name == tensors[i].name);
        CHECK(back[i].dtype == tensors[i].dtype);
        CHECK(back[i].shape == tensors[i].shape);
        CHECK(back[i].data == tensors[i].data);
    }
    CHECK(listing(dir.path) == std::set<std::string>{"u.safetensors"});

    write_tensors(dir / "empty.safetensors", {});
    CHECK(read(dir / "empty.safetensors") == safetensors("{}      ", ""));
    CHECK(read_tensors(dir / "empty.safetensors").empty());
}

TEST_CASE("safetensors: every malformed input is reported", "[tensor_io]") {
    struct Case {
        const char* label;
        std::string bytes;
        std::string message;
    };
    const std::string f32x1 = raw<float>({1.f});
    const std::vector<Case> cases = {
        {"too short", "abc", "not a safetensors file (3 bytes, too short for the 8-byte header size)"},
        {"header size past the end", le(1000, 8) + "{}", "header size 1000 exceeds the 2 bytes that follow it"},
        {"bad JSON", safetensors(R"({"a": )", ""), "header is not valid JSON: parse error"},
        {"bad UTF-8", safetensors("{\"\xff\": 1}", ""), "header is not valid JSON"},
        {"not an object", safetensors("[1, 2]", ""), "header is not a JSON object"},
        {"entry not an object", safetensors(R"({"a": 3})", ""), "tensor 'a': header entry is not a JSON object"},
        {"no dtype", safetensors(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': header entry has no \"dtype\""},
        {"no shape", safetensors(R"({"a": {"dtype": "F32", "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': header entry has no \"shape\""},
        {"no data_offsets", safetensors(R"({"a": {"dtype": "F32", "shape": [1]}})", f32x1),
         "tensor 'a': header entry has no \"data_offsets\""},
        {"dtype not a string", safetensors(R"({"a": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': \"dtype\" is not a string"},
        {"BF16 of the wrong size", safetensors(R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'w': data_offsets [0, 4] span 4 bytes, but shape [3] of BF16 needs 6"},
        {"F16", safetensors(R"({"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'w' has unsupported dtype F16 (only F32, F64 and BF16 are supported)"},
        {"I32", safetensors(R"({"w": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'w' has unsupported dtype I32"},
        {"negative dim", safetensors(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': \"shape\" must be an array of non-negative integers, got [-1]"},
        {"float dim", safetensors(R"({"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': \"shape\" must be an array of non-negative integers, got [1.0]"},
        {"shape not an array", safetensors(R"({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': \"shape\" must be an array of non-negative integers, got 1"},
        {"huge shape",
         safetensors(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': shape [4294967296, 4294967296] is too large"},
        {"three offsets", safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", f32x1),
         "tensor 'a': \"data_offsets\" must be [begin, end] with non-negative integers, got [0,4,8]"},
        {"negative offset", safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", f32x1),
         "tensor 'a': \"data_offsets\" must be [begin, end]"},
        {"end before begin", safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", f32x1),
         "tensor 'a': data_offsets [4, 0] end before they begin"},
        {"past the buffer", safetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", f32x1),
         "tensor 'a': data_offsets [0, 8] run past the end of the 4-byte data buffer"},
        {"byte count", safetensors(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", f32x1 + f32x1),
         "tensor 'a': data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12"},
        {"F64 byte count", safetensors(R"({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 4]}})", f32x1),
         "tensor 'a': data_offsets [0, 4] span 4 bytes, but shape [1] of F64 needs 8"},
        {"overlap",
         safetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                     R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                     f32x1 + f32x1 + f32x1),
         "tensor 'b' (bytes 4..12) overlaps tensor 'a' (bytes 0..8)"},
        {"gap", safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", f32x1 + f32x1),
         "bytes 0..4 of the data buffer belong to no tensor (gap before tensor 'a')"},
        {"trailing bytes", safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", f32x1 + "xyz"),
         "the last 3 bytes of the data buffer belong to no tensor (trailing data)"},
        {"metadata not an object", safetensors(R"({"__metadata__": 3})", ""), "\"__metadata__\" is not a JSON object"},
        {"metadata value", safetensors(R"({"__metadata__": {"step": 3}})", ""),
         "\"__metadata__\" value for 'step' is not a string"},
        {"duplicate",
         safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                     R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                     f32x1 + f32x1),
         "'a' appears twice in the header"},
        {"a .npy file", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f32x1),
         "this is a single .npy file; pass a directory of .npy files"},
    };
    TempDir dir;
    for (const Case& c : cases) {
        INFO(c.label);
        const std::string path = dir / "bad.safetensors";
        write_file(path, c.bytes);
        const std::string message = error_of([&] { read_tensors(path); });
        CHECK_THAT(message, Contains(path + ": "));
        CHECK_THAT(message, Contains(c.message));
    }
}

TEST_CASE("safetensors: a header over the reference limit is refused", "[tensor_io]") {
    TempDir dir;
    const std::string path = dir / "huge.safetensors";
    write_file(path, le(200'000'000, 8));
    fs::resize_file(path, 200'000'008);  // sparse: no real disk used
    CHECK_THAT(error_of([&] { read_tensors(path); }),
               Contains("header size 200000000 exceeds the limit of 100000000 bytes"));
}

TEST_CASE("npy: a directory is written as numpy lays it out", "[tensor_io]") {
    TempDir dir;
    auto tensors = sample_tensors();
    tensors.push_back(Tensor::from<double>("f64", {3}, ramp<double>(3)));
    write_tensors(dir / "out", tensors);

    CHECK(listing(dir.path) == std::set<std::string>{"out"});
    CHECK(listing(dir.path / "out") == std::set<std::string>{"blocks[2].attention.q.npy", "linear[0].npy", "scale.npy",
                                                             "empty.npy", "f64.npy"});
    CHECK(read(dir / "out/blocks[2].attention.q.npy") ==
          npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw(ramp<float>(6))));
    CHECK(read(dir / "out/linear[0].npy") ==
          npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", raw(ramp<float>(4))));
    CHECK(read(dir / "out/scale.npy") ==
          npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", raw<float>({2.5f})));
    CHECK(read(dir / "out/f64.npy") ==
          npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", raw(ramp<double>(3))));
    CHECK(read(dir / "out/f64.npy").size() == 128 + 24);  // the data starts at a multiple of 64

    auto back = read_tensors(dir / "out");  // sorted by name
    REQUIRE(back.size() == 5);
    CHECK(back[0].name == "blocks[2].attention.q");
    CHECK(back[0].shape == std::vector<std::int64_t>{2, 3});
    CHECK(values<float>(back[0]) == ramp<float>(6));
    CHECK(find(back, "scale").shape.empty());
    CHECK(values<float>(find(back, "scale")) == std::vector<float>{2.5f});
    CHECK(find(back, "empty").shape == std::vector<std::int64_t>{0, 5});
    CHECK(find(back, "f64").dtype == DType::F64);
    CHECK(values<double>(find(back, "f64")) == ramp<double>(3));
}

TEST_CASE("npy: header variants numpy may write are read", "[tensor_io]") {
    TempDir dir;
    const std::string f64x6 = raw(ramp<double>(6));
    write_file(dir / "v2.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f64x6, 2));
    write_file(dir / "v3.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", f64x6, 3));
    write_file(dir / "py2.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 2L), }", f64x6));
    write_file(dir / "compact.npy", npy("{\"shape\":(1,6),\"fortran_order\":False,\"descr\":\"<f8\"}", f64x6));
    write_file(dir / "notes.txt", "ignored: not a .npy file");
    auto tensors = read_tensors(dir.path.string());
    REQUIRE(tensors.size() == 4);
    CHECK(find(tensors, "v2").shape == std::vector<std::int64_t>{2, 3});
    CHECK(find(tensors, "v3").shape == std::vector<std::int64_t>{6});
    CHECK(find(tensors, "py2").shape == std::vector<std::int64_t>{3, 2});
    CHECK(find(tensors, "compact").shape == std::vector<std::int64_t>{1, 6});
    for (const Tensor& t : tensors) CHECK(values<double>(t) == ramp<double>(6));
}

TEST_CASE("npy: every malformed or unsupported file is reported", "[tensor_io]") {
    struct Case {
        const char* label;
        std::string bytes;
        std::string message;
    };
    const std::string f32x1 = raw<float>({1.f});
    auto f4 = [](const std::string& shape) {
        return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    };
    const std::vector<Case> cases = {
        {"too short", "\x93NUM", "not a .npy file (4 bytes)"},
        {"bad magic", "\x93NUMPX" + npy(f4("(1,)"), f32x1).substr(6), "not a .npy file (bad magic)"},
        {"version 4.0", npy(f4("(1,)"), f32x1, 4), "unsupported .npy format version 4.0"},
        {"header past the end", std::string("\x93NUMPY\x01\x00", 8) + le(500, 2) + "{}",
         "header length 500 runs past the end of the file"},
        {"not a dict", npy("['<f4']", ""), "malformed .npy header: the header is not a dict"},
        {"missing key", npy("{'descr': '<f4', 'shape': (1,), }", f32x1), "the header has no 'fortran_order'"},
        {"extra key", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': True}", f32x1),
         "unexpected key 'x' in the header"},
        {"duplicate key", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", f32x1),
         "key 'descr' appears twice in the header"},
        {"misplaced quote", npy("{'descr: '<f4'}", ""), "expected ':' after 'descr: '"},
        {"open string", npy("{'descr", ""), "unterminated string"},
        {"text after", npy(f4("(1,)") + " x", f32x1), "unexpected text after the header dict"},
        {"big-endian", npy("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", f32x1 + f32x1),
         "big-endian data ('>f8') is not supported; save a little-endian array, e.g. arr.astype('<f8')"},
        {"float16", npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", f32x1),
         "unsupported dtype '<f2' (only float32 '<f4' and float64 '<f8' are supported)"},
        {"int32", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", f32x1), "unsupported dtype '<i4'"},
        {"structured", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", f32x1),
         "structured dtypes are not supported"},
        {"fortran order", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", f32x1),
         "Fortran-order (column-major) data is not supported"},
        {"fortran_order not a bool", npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", f32x1),
         "'fortran_order' must be True or False"},
        {"negative dim", npy(f4("(-1,)"), f32x1), "'shape' must be a tuple of non-negative integers"},
        {"shape as a list", npy(f4("[1]"), f32x1), "'shape' must be a tuple of integers"},
        {"huge dim", npy(f4("(99999999999999999999,)"), f32x1), "dimension 99999999999999999999 in 'shape' is too large"},
        {"huge shape", npy(f4("(4294967296, 4294967296)"), f32x1), "shape [4294967296, 4294967296] is too large"},
        {"truncated data", npy(f4("(3,)"), f32x1 + f32x1),
         "shape [3] of '<f4' needs 12 data bytes, but the file has 8 (truncated)"},
        {"trailing data", npy(f4("(1,)"), f32x1 + f32x1),
         "shape [1] of '<f4' needs 4 data bytes, but the file has 8 (trailing data)"},
    };
    for (const Case& c : cases) {
        INFO(c.label);
        TempDir dir;
        write_file(dir / "t[0].npy", c.bytes);
        const std::string message = error_of([&] { read_tensors(dir.path.string()); });
        CHECK_THAT(message, Contains(dir / "t[0].npy: "));
        CHECK_THAT(message, Contains(c.message));
    }
}

TEST_CASE("reading: missing paths and odd entries", "[tensor_io]") {
    TempDir dir;
    CHECK(error_of([&] { read_tensors(dir / "nope"); }) == dir / "nope" + ": No such file or directory");
    fs::create_directory(dir / "d");
    fs::create_directory(dir / "d/sub.npy");
    CHECK(error_of([&] { read_tensors(dir / "d"); }) == dir / "d/sub.npy" + ": not a regular file");
    fs::create_directory(dir / "empty");
    CHECK(read_tensors(dir / "empty").empty());
}

TEST_CASE("writing: the format follows the path", "[tensor_io]") {
    TempDir dir;
    auto tensors = sample_tensors();
    write_tensors(dir / "a.safetensors", tensors);
    write_tensors(dir / "b", tensors);
    write_tensors(dir / "c.safetensors/", tensors);
    fs::create_directory(dir / "d.safetensors");
    write_tensors(dir / "d.safetensors", tensors);
    CHECK(fs::is_regular_file(dir / "a.safetensors"));
    CHECK(fs::is_regular_file(dir / "b/linear[0].npy"));
    CHECK(fs::is_regular_file(dir / "c.safetensors/linear[0].npy"));
    CHECK(fs::is_regular_file(dir / "d.safetensors/linear[0].npy"));
    for (const char* name : {"a.safetensors", "b", "c.safetensors", "d.safetensors"}) {
        INFO(name);
        CHECK(read_tensors(dir / name).size() == tensors.size());
    }
    CHECK(listing(dir.path) == std::set<std::string>{"a.safetensors", "b", "c.safetensors", "d.safetensors"});
}

TEST_CASE("writing: bad tensors are refused before anything is created", "[tensor_io]") {
    TempDir dir;
    auto with = [](Tensor t) {
        auto tensors = sample_tensors();
        tensors.push_back(std::move(t));
        return tensors;
    };
    const std::string out = dir / "out";
    const std::string st = dir / "out.safetensors";
    CHECK(error_of([&] { write_tensors(out, with(Tensor::from<float>("a/b", {1}, {1.f}))); }) ==
          out + ": tensor 'a/b': a name containing '/' or NUL cannot be a .npy file name");
    CHECK(error_of([&] { write_tensors(out, with(Tensor::from<float>(std::string("a\0b", 3), {1}, {1.f}))); }) ==
          out + ": tensor 'a\\x00b': a name containing '/' or NUL cannot be a .npy file name");
    CHECK(error_of([&] { write_tensors(out, with(Tensor::from<float>("scale", {1}, {1.f}))); }) ==
          out + ": tensor 'scale' appears twice");
    CHECK(error_of([&] { write_tensors(out, with(Tensor::from<float>("", {1}, {1.f}))); }) ==
          out + ": a tensor has an empty name");
    Tensor short_data = Tensor::from<float>("w", {2}, {1.f, 2.f});
    short_data.data.resize(4);
    CHECK(error_of([&] { write_tensors(st, with(short_data)); }) ==
          st + ": tensor 'w' has 4 data bytes, but shape [2] of F32 needs 8");
    CHECK(error_of([&] { write_tensors(st, with(Tensor::from<float>("__metadata__", {1}, {1.f}))); }) ==
          st + ": tensor '__metadata__': the name is reserved in safetensors");
    CHECK(error_of([&] { write_tensors(dir / "no/such/dir.safetensors", {}); }) ==
          dir / "no/such/dir.safetensors" + ": directory '" + dir / "no/such" + "' does not exist");
    CHECK(error_of([&] { write_tensors(dir / "no/such/dir", {}); }) ==
          dir / "no/such/dir" + ": directory '" + dir / "no/such" + "' does not exist");
    write_file(dir / "file", "x");
    CHECK(error_of([&] { write_tensors(dir / "file", {}); }) == dir / "file" + ": exists and is not a directory");
    CHECK(listing(dir.path) == std::set<std::string>{"file"});
}

TEST_CASE("writing: all or nothing", "[tensor_io]") {
    TempDir dir;
    const std::string out = dir / "out";
    write_tensors(out, {Tensor::from<float>("old", {1}, {1.f})});

    SECTION("a failure half way leaves the old directory and no temporaries") {
        // The second file cannot be created (its name is too long), after the first was written.
        auto tensors = sample_tensors();
        tensors.push_back(Tensor::from<float>(std::string(300, 'x'), {1}, {1.f}));
        CHECK_THAT(error_of([&] { write_tensors(out, tensors); }), Contains("File name too long"));
        CHECK(listing(dir.path) == std::set<std::string>{"out"});
        CHECK(listing(out) == std::set<std::string>{"old.npy"});
    }
    SECTION("success replaces the old directory") {
        write_tensors(out + "/", sample_tensors());
        CHECK(listing(dir.path) == std::set<std::string>{"out"});
        CHECK(listing(out) == std::set<std::string>{"blocks[2].attention.q.npy", "linear[0].npy", "scale.npy", "empty.npy"});
    }
    SECTION("a directory holding anything but .npy files is never replaced") {
        write_file(out + "/notes.txt", "mine");
        CHECK(error_of([&] { write_tensors(out, sample_tensors()); }) ==
              out + ": refusing to replace the existing directory: it holds 'notes.txt', which is not a .npy file");
        CHECK(listing(out) == std::set<std::string>{"old.npy", "notes.txt"});
        CHECK(listing(dir.path) == std::set<std::string>{"out"});
    }
    SECTION("a safetensors file is replaced only on success") {
        const std::string st = dir / "u.safetensors";
        write_tensors(st, {Tensor::from<float>("old", {1}, {1.f})});
        const std::string before = read(st);
        CHECK_THAT(error_of([&] { write_tensors(st, {Tensor::from<float>("__metadata__", {1}, {1.f})}); }),
                   Contains("reserved"));
        CHECK(read(st) == before);
        write_tensors(st, sample_tensors());
        CHECK(read_tensors(st).size() == 4);
        CHECK(listing(dir.path) == std::set<std::string>{"out", "u.safetensors"});
    }
}

TEST_CASE("validate: every problem is reported by name", "[tensor_io]") {
    const std::vector<TensorSpec> expected = {{"blocks[2].attention.q", {2, 3}}, {"linear[0]", {256, 784}}, {"x", {3, 2}}};
    SECTION("fine") {
        std::vector<Tensor> tensors = {Tensor::from<float>("x", {3, 2}, ramp<float>(6)),
                                       Tensor::from<float>("blocks[2].attention.q", {2, 3}, ramp<float>(6)),
                                       Tensor::from<float>("linear[0]", {256, 784}, std::vector<float>(256 * 784))};
        CHECK(validate(tensors, expected).empty());
    }
    SECTION("missing, unexpected, wrong shape, non-finite, mixed dtypes") {
        std::vector<float> q = ramp<float>(6);
        q[1] = std::numeric_limits<float>::quiet_NaN();
        q[5] = -std::numeric_limits<float>::infinity();
        std::vector<double> x = ramp<double>(6);
        x[5] = std::numeric_limits<double>::infinity();
        std::vector<Tensor> tensors = {Tensor::from<float>("blocks[2].attention.q", {2, 3}, q),
                                       Tensor::from<double>("x", {2, 3}, x),
                                       Tensor::from<float>("foo", {1}, {0.f})};
        CHECK(validate(tensors, expected) ==
              std::vector<std::string>{
                  "tensor 'blocks[2].attention.q' has 2 NaN/Inf values (first at index 1)",
                  "missing tensor 'linear[0]' (expected shape [256, 784])",
                  "tensor 'x' has shape [2, 3], expected [3, 2]",
                  "tensor 'x' has 1 NaN/Inf value (first at index 5)",
                  "unexpected tensor 'foo'",
                  "tensor 'x' is F64 but tensor 'blocks[2].attention.q' is F32 (all tensors must share one dtype)",
              });
    }
    SECTION("duplicates and inconsistent tensors") {
        Tensor bad = Tensor::from<float>("x", {3, 2}, ramp<float>(6));
        bad.data.resize(8);
        std::vector<Tensor> tensors = {bad, Tensor::from<float>("x", {3, 2}, ramp<float>(6))};
        CHECK(validate(tensors, {{"x", {3, 2}}}) ==
              std::vector<std::string>{"duplicate tensor 'x'", "tensor 'x' has 8 data bytes, but shape [3, 2] of F32 needs 24"});
    }
    SECTION("F64 throughout is fine") {
        CHECK(validate({Tensor::from<double>("x", {3, 2}, ramp<double>(6))}, {{"x", {3, 2}}}).empty());
    }
}

TEST_CASE("npy: interoperability with numpy", "[tensor_io][numpy]") {
    if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        WARN("/usr/bin/python3 with numpy not available: numpy interoperability not checked");
        return;
    }
    TempDir dir;
    const std::string script = dir / "interop.py";
    write_file(script, R"PY(
import os, sys
import numpy as np

def ramp(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    return (np.arange(n, dtype=np.float64) * 0.5 - 3).astype(dtype).reshape(shape)

GOOD = {"blocks[2].attention.q": ((4, 3), "<f4"), "linear[0]": ((2, 3, 5), "<f8"),
        "scalar": ((), "<f4"), "empty": ((0, 7), "<f4"), "col.vec": ((5, 1), "<f8")}

def write(d):
    os.makedirs(os.path.join(d, "src"))
    for name, (shape, dt) in GOOD.items():
        np.save(os.path.join(d, "src", name + ".npy"), ramp(shape, dt))
    with open(os.path.join(d, "src", "v2.npy"), "wb") as f:
        np.lib.format.write_array(f, ramp((3,), "<f8"), version=(2, 0))
    bad = {"big_endian": ramp((2, 2), ">f4"), "fortran": np.asfortranarray(ramp((3, 2), "<f4")),
           "half": ramp((2,), "<f2"), "int": np.arange(3, dtype="<i4")}
    for name, arr in bad.items():
        os.makedirs(os.path.join(d, name))
        np.save(os.path.join(d, name, "t.npy"), arr)

def check(d):
    expected = dict(GOOD, **{"v2": ((3,), "<f8")})
    files = sorted(os.listdir(d))
    assert files == sorted(n + ".npy" for n in expected), files
    for name, (shape, dt) in expected.items():
        path = os.path.join(d, name + ".npy")
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
            assert f.tell() % 64 == 0, (name, f.tell())
        arr = np.load(path, allow_pickle=False)
        want = ramp(shape, dt)
        assert arr.dtype == want.dtype and arr.shape == want.shape, (name, arr.dtype, arr.shape)
        assert np.array_equal(arr, want), name

{"write": write, "check": check}[sys.argv[1]](sys.argv[2])
)PY");
    REQUIRE(std::system(("/usr/bin/python3 " + script + " write " + dir.path.string()).c_str()) == 0);

    // numpy -> modc
    auto tensors = read_tensors(dir / "src");
    REQUIRE(tensors.size() == 6);
    CHECK(find(tensors, "blocks[2].attention.q").shape == std::vector<std::int64_t>{4, 3});
    CHECK(values<float>(find(tensors, "blocks[2].attention.q")) == ramp<float>(12));
    CHECK(find(tensors, "linear[0]").dtype == DType::F64);
    CHECK(values<double>(find(tensors, "linear[0]")) == ramp<double>(30));
    CHECK(find(tensors, "scalar").shape.empty());
    CHECK(values<float>(find(tensors, "scalar")) == ramp<float>(1));
    CHECK(find(tensors, "empty").shape == std::vector<std::int64_t>{0, 7});
    CHECK(values<double>(find(tensors, "col.vec")) == ramp<double>(5));
    CHECK(values<double>(find(tensors, "v2")) == ramp<double>(3));
    CHECK_THAT(error_of([&] { read_tensors(dir / "big_endian"); }), Contains("big-endian data ('>f4') is not supported"));
    CHECK_THAT(error_of([&] { read_tensors(dir / "fortran"); }), Contains("Fortran-order (column-major) data"));
    CHECK_THAT(error_of([&] { read_tensors(dir / "half"); }), Contains("unsupported dtype '<f2'"));
    CHECK_THAT(error_of([&] { read_tensors(dir / "int"); }), Contains("unsupported dtype '<i4'"));

    // modc -> numpy
    write_tensors(dir / "out", tensors);
    CHECK(std::system(("/usr/bin/python3 " + script + " check '" + (dir / "out") + "'").c_str()) == 0);
}

TEST_CASE("BF16: safetensors round trip, conversions, and no .npy", "[tensor_io][bf16]") {
    TempDir dir;
    // 1.0, -2.5, the largest finite bf16, the smallest denormal, -0: bits as a checkpoint has them.
    const std::vector<std::uint16_t> bits{0x3f80, 0xc020, 0x7f7f, 0x0001, 0x8000, 0x4049};
    std::vector<Tensor> tensors{Tensor::from<std::uint16_t>("w", {2, 3}, bits),
                                Tensor::from<std::uint16_t>("b", {0}, {})};
    CHECK(tensors[0].dtype == DType::BF16);
    CHECK(tensors[0].data.size() == 12);
    const std::string path = dir / "g.safetensors";
    write_tensors(path, tensors);
    const std::string json = R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
                             R"("b":{"dtype":"BF16","shape":[0],"data_offsets":[12,12]}})";
    CHECK(read(path) == safetensors(json + std::string((8 - json.size() % 8) % 8, ' '), raw(bits)));
    auto back = read_tensors(path);
    REQUIRE(back.size() == 2);
    CHECK(back[0].dtype == DType::BF16);
    CHECK(back[0].shape == std::vector<std::int64_t>{2, 3});
    CHECK(values<std::uint16_t>(back[0]) == bits);
    CHECK(error_of([&] { back[0].as<float>(); }) == "tensor 'w' is BF16, not F32");

    // To F32 exactly, and back to the same bits.
    Tensor wide = convert(back[0], DType::F32);
    CHECK(values<float>(wide) == std::vector<float>{1.0f, -2.5f, 3.38953139e38f, 9.18354962e-41f, -0.0f, 3.140625f});
    CHECK(std::signbit(values<float>(wide)[4]));
    CHECK(values<std::uint16_t>(convert(wide, DType::BF16)) == bits);
    // To BF16 rounded to nearest even: 1 + 2^-8 is a tie (down to 1), 1 + 3 * 2^-8 one (up).
    Tensor narrow = convert(Tensor::from<double>("x", {4}, {1.0 + 1.0 / 256, 1.0 + 3.0 / 256, 1.0 + 1.5 / 256, 3.5e38}),
                            DType::BF16);
    CHECK(values<std::uint16_t>(narrow) == std::vector<std::uint16_t>{0x3f80, 0x3f82, 0x3f81, 0x7f80});

    // validate accepts BF16, finds NaN in it, and wants one dtype for all.
    CHECK(validate(back, {{"w", {2, 3}}, {"b", {0}}}).empty());
    std::vector<Tensor> bad{Tensor::from<std::uint16_t>("w", {2}, {0x3f80, 0x7fc0}), Tensor::from<float>("v", {1}, {1.f})};
    auto problems = validate(bad, {{"w", {2}}, {"v", {1}}});
    REQUIRE(problems.size() == 2);
    CHECK(problems[0] == "tensor 'w' has 1 NaN/Inf value (first at index 1)");
    CHECK_THAT(problems[1], Contains("tensor 'v' is F32 but tensor 'w' is BF16 (all tensors must share one dtype)"));

    // A directory of .npy files cannot hold BF16: refused before anything is created.
    CHECK(error_of([&] { write_tensors(dir / "npy", tensors); }) ==
          dir / "npy" + ": tensor 'w' is BF16, which a .npy file cannot hold (numpy has no bfloat16); write a .safetensors file");
    CHECK(listing(dir.path) == std::set<std::string>{"g.safetensors"});
}

TEST_CASE("bf16 conversions: exact widening, round to nearest even, NaN and infinities", "[bf16]") {
    const auto bits_of = modc::test::float_bits;
    const auto from_bits = modc::test::float_from_bits;
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        float f = modc::bf16_to_f32(static_cast<std::uint16_t>(h));
        REQUIRE(bits_of(f) == h << 16);
        if (!std::isnan(f)) REQUIRE(modc::f32_to_bf16(f) == h);  // every bf16 survives the round trip
    }
    for (auto [in, out] : modc::test::bf16_rounding_cases()) {
        INFO(std::hex << in);
        CHECK(modc::f32_to_bf16(from_bits(in)) == out);
    }
    // NaN stays NaN, with its sign, whatever its payload.
    for (std::uint32_t nan : modc::test::bf16_nan_inputs()) {
        INFO(std::hex << nan);
        std::uint16_t h = modc::f32_to_bf16(from_bits(nan));
        CHECK(std::isnan(modc::bf16_to_f32(h)));
        CHECK((h & 0x8000) == (nan >> 16 & 0x8000));
    }
}

TEST_CASE("mapped reading: views of the file, private, and misaligned data copied", "[tensor_io][mmap]") {
    TempDir dir;
    const std::string path = dir / "g.safetensors";
    write_tensors(path, sample_tensors());
    const std::string before = read(path);
    auto tensors = read_tensors(path);
    CHECK(tensors[0].data.mapped());
    tensors[0].as<float>()[0] = 42.f;  // copy-on-write: the file keeps its bytes
    CHECK(tensors[0].as<float>()[0] == 42.f);
    CHECK(read(path) == before);

    // A BF16 tensor of 3 elements puts the F32 one after it at an offset of 6: copied, aligned.
    const std::string header = R"({"h": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},)"
                               R"( "f": {"dtype": "F32", "shape": [2], "data_offsets": [6, 14]}})";
    const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
    write_file(dir / "odd.safetensors",
               safetensors(padded, raw<std::uint16_t>({0x3f80, 0x4000, 0x4040}) + raw<float>({1.5f, -2.f})));
    auto odd = read_tensors(dir / "odd.safetensors");
    CHECK_FALSE(odd[1].data.mapped());
    CHECK(reinterpret_cast<std::uintptr_t>(odd[1].data.data()) % alignof(float) == 0);
    CHECK(values<float>(odd[1]) == std::vector<float>{1.5f, -2.f});
}

// A file cut short after it was mapped: reading the lost pages raises SIGBUS, which must end
// the process with a message naming the file and exit status 1, not a crash. In a child process.
TEST_CASE("mapped reading: a file truncated after mapping is a clear error", "[tensor_io][mmap]") {
    TempDir dir;
    for (const bool npy : {false, true}) {
        const std::string path = npy ? dir / "grads" : dir / "g.safetensors";
        write_tensors(path, {Tensor::from<float>("w", {256, 1024}, ramp<float>(256 * 1024))});
        const std::string file = npy ? path + "/w.npy" : path;
        int err[2];
        REQUIRE(::pipe(err) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::dup2(err[1], STDERR_FILENO);
            auto tensors = read_tensors(path);
            if (::truncate(file.c_str(), 64) != 0) ::_exit(3);
            float sum = 0;
            for (float v : tensors[0].as<float>()) sum += v;
            ::_exit(sum == 12345.f ? 4 : 2);  // unreachable: the read above faults
        }
        ::close(err[1]);
        std::string message;
        char buffer[512];
        for (ssize_t n; (n = ::read(err[0], buffer, sizeof buffer)) > 0;) message.append(buffer, static_cast<std::size_t>(n));
        ::close(err[0]);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        INFO(message);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 1);
        CHECK_THAT(message, Contains(file + ": the file shrank while it was being read"));
    }
}

TEST_CASE("TensorFileWriter: tensors in any order, all or nothing", "[tensor_io]") {
    TempDir dir;
    const auto tensors = sample_tensors();
    std::vector<TensorLayout> layout;
    for (const auto& t : tensors) layout.push_back({t.name, t.dtype, t.shape});
    for (const std::string path : {dir / "u.safetensors", dir / "u_npy"}) {
        {
            TensorFileWriter writer(path, layout);
            for (std::size_t i = tensors.size(); i-- > 0;) writer.write(i, tensors[i].data.data());
            writer.commit();
        }
        auto back = read_tensors(path);
        REQUIRE(back.size() == tensors.size());
        for (const auto& t : tensors) CHECK(find(back, t.name).data == t.data);
        if (path == dir / "u.safetensors") {
            // Byte for byte what write_tensors lays out.
            write_tensors(dir / "w.safetensors", tensors);
            CHECK(read(path) == read(dir / "w.safetensors"));
        }
    }
    const auto before = listing(dir.path);
    {
        TensorFileWriter writer(dir / "v.safetensors", layout);
        writer.write(0, tensors[0].data.data());
        CHECK_THAT(error_of([&] { writer.write(0, tensors[0].data.data()); }), Contains("'blocks[2].attention.q' written twice"));
        CHECK_THAT(error_of([&] { writer.commit(); }), Contains("tensor 'linear[0]' was never written"));
    }
    CHECK(listing(dir.path) == before);  // the temporary went with the writer
}
