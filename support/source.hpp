// Source files and locations. Every AST and IR node carries a Loc.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace modc {

// A half-open byte range [begin, end) in one source file.
struct Loc {
    std::uint32_t file = 0;
    std::uint32_t begin = 0;
    std::uint32_t end = 0;
    bool valid() const { return file != 0; }
};

// Joins two locations in the same file into the range covering both.
Loc span(Loc a, Loc b);

struct LineCol {
    std::uint32_t line = 1;  // 1-based
    std::uint32_t col = 1;   // 1-based, in bytes
};

class SourceFile {
public:
    SourceFile(std::string name, std::string text);
    const std::string& name() const { return name_; }
    const std::string& text() const { return text_; }
    LineCol line_col(std::uint32_t offset) const;
    // The text of the line holding offset, without its newline (a '\r' also ends it).
    std::string line_text(std::uint32_t offset) const { return std::string(line_view(offset)); }
    std::string_view line_view(std::uint32_t offset) const;
    std::string slice(Loc loc) const;

private:
    std::string name_;
    std::string text_;
    std::vector<std::uint32_t> line_starts_;
    std::vector<std::uint32_t> line_ends_;  // where each line's text stops: its '\n' or first '\r'
};

// The largest source file modc reads (a .mod file is a few kilobytes): larger ones, and files
// that never end (/dev/zero), are refused after reading this many bytes.
inline constexpr std::size_t kMaxSourceBytes = std::size_t(16) << 20;

// The text of the file at `path`, read whole; false with `error` set ("cannot read 'PATH'", or
// the limit above) when it cannot be read or is larger than kMaxSourceBytes.
bool read_source_file(const std::string& path, std::string& text, std::string& error);
std::string source_too_large_message(const std::string& what);

// Owns every source of a compilation; file ids start at 1 so that Loc{} is "no location".
class SourceManager {
public:
    std::uint32_t add(std::string name, std::string text);
    const SourceFile& file(std::uint32_t id) const { return *files_.at(id - 1); }
    std::string slice(Loc loc) const { return loc.valid() ? file(loc.file).slice(loc) : std::string(); }
    std::string describe(Loc loc) const;  // "name:line:col"

private:
    std::vector<std::unique_ptr<SourceFile>> files_;
};

}  // namespace modc
