// Helpers shared by the unit tests.
#pragma once
#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace modc::test {

// The whole file as bytes; empty if it cannot be read.
inline std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A fresh directory under the system temp dir, removed with everything in it. The prefix
// names the test file that made it, for anyone looking at a leftover.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& prefix = "modc_test_") {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() / (prefix + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// A shell word: s in single quotes (the paths the tests use hold none).
inline std::string quote(const std::string& s) { return "'" + s + "'"; }

#ifdef MODC_BINARY
// What a run of the modc binary gave: its exit status (-1 if it did not exit), stdout, stderr.
struct ModcRun {
    int status = -1;
    std::string out;
    std::string err;
};

// Runs `ENV modc ARGS` through the shell; env: "NAME=VALUE ..." or empty. ARGS are shell words
// (quote() paths).
inline ModcRun run_modc(const std::string& args, const std::string& env = "") {
    TempDir tmp("modc_run_");
    std::string cmd = (env.empty() ? "" : env + " ") + quote(MODC_BINARY) + " " + args + " >" + quote(tmp / "stdout") +
                      " 2>" + quote(tmp / "stderr");
    int status = std::system(cmd.c_str());
    return ModcRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(tmp.path / "stdout"), read(tmp.path / "stderr")};
}
#endif

// The bits of an f32 and back (C++17 has no std::bit_cast).
inline std::uint32_t float_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
inline float float_from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// f32 -> bf16 rounding: round to nearest, ties to even, for both conversions under test (the
// host's, support/bf16.hpp, and the one the CUDA source emits).
struct Bf16Case {
    std::uint32_t in;   // f32 bits
    std::uint16_t out;  // bf16 bits
};
inline const std::vector<Bf16Case>& bf16_rounding_cases() {
    static const std::vector<Bf16Case> cases{
        {0x3f808000, 0x3f80},  // tie, even below: down
        {0x3f818000, 0x3f82},  // tie, odd below: up
        {0x3f808001, 0x3f81},  // just above a tie: up
        {0x3f807fff, 0x3f80},  // just below: down
        {0xbf818000, 0xbf82},  // negative ties round the magnitude the same way
        {0x7f7fffff, 0x7f80},  // past the largest bf16: infinity
        {0x7f7f7fff, 0x7f7f},  // the largest bf16, from below
        {0x7f800000, 0x7f80},  // inf
        {0xff800000, 0xff80},  // -inf
        {0x00008000, 0x0000},  // denormal tie to even (0)
        {0x00018000, 0x0002},  // denormal tie to even (2)
        {0x00008001, 0x0001},  // denormal above a tie
        {0x80000000, 0x8000},  // -0
        {0x007fffff, 0x0080},  // the largest denormal rounds up to the smallest normal
    };
    return cases;
}
// NaNs that must stay NaN, with their sign, whatever the payload (one in the low half only
// would otherwise round to infinity).
inline const std::vector<std::uint32_t>& bf16_nan_inputs() {
    static const std::vector<std::uint32_t> nans{0x7fc00000u, 0x7f800001u, 0x7fffffffu, 0xff800001u, 0xffc00000u};
    return nans;
}

}  // namespace modc::test
