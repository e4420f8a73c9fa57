// Helpers shared by the unit tests.
#pragma once
#include <filesystem>
#include <fstream>
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

}  // namespace modc::test
