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

}  // namespace modc::test
