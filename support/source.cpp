#include "support/source.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <sys/stat.h>

namespace modc {

Loc span(Loc a, Loc b) {
    if (!a.valid()) return b;
    if (!b.valid() || a.file != b.file) return a;
    return Loc{a.file, std::min(a.begin, b.begin), std::max(a.end, b.end)};
}

SourceFile::SourceFile(std::string name, std::string text) : name_(std::move(name)), text_(std::move(text)) {
    line_starts_.push_back(0);
    line_ends_.push_back(static_cast<std::uint32_t>(text_.size()));
    bool ended = false;  // the current line has met its first '\r'
    for (std::uint32_t i = 0; i < text_.size(); ++i) {
        if (text_[i] == '\n') {
            if (!ended) line_ends_.back() = i;
            line_starts_.push_back(i + 1);
            line_ends_.push_back(static_cast<std::uint32_t>(text_.size()));
            ended = false;
        } else if (text_[i] == '\r' && !ended) {
            line_ends_.back() = i;
            ended = true;
        }
    }
}

LineCol SourceFile::line_col(std::uint32_t offset) const {
    offset = std::min<std::uint32_t>(offset, static_cast<std::uint32_t>(text_.size()));
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    auto line = static_cast<std::uint32_t>(it - line_starts_.begin());
    return {line, offset - line_starts_[line - 1] + 1};
}

std::string_view SourceFile::line_view(std::uint32_t offset) const {
    LineCol lc = line_col(offset);
    std::uint32_t start = line_starts_[lc.line - 1];
    return std::string_view(text_).substr(start, line_ends_[lc.line - 1] - start);
}

std::string SourceFile::slice(Loc loc) const {
    auto b = std::min<std::size_t>(loc.begin, text_.size());
    auto e = std::min<std::size_t>(std::max(loc.end, loc.begin), text_.size());
    return text_.substr(b, e - b);
}

std::string source_too_large_message(const std::string& what) {
    return what + " is larger than modc's limit of " + std::to_string(kMaxSourceBytes >> 20) + " MiB for a source file";
}

bool read_source_file(const std::string& path, std::string& text, std::string& error) {
    text.clear();
    struct stat st {};
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f || ::fstat(::fileno(f.get()), &st) != 0 || S_ISDIR(st.st_mode)) {
        error = "cannot read '" + path + "'";
        return false;
    }
    // Read in pieces up to one byte past the limit: the size of a pipe or a device is unknown.
    char buffer[1 << 16];
    for (;;) {
        std::size_t want = std::min(sizeof buffer, kMaxSourceBytes + 1 - text.size());
        std::size_t got = std::fread(buffer, 1, want, f.get());
        text.append(buffer, got);
        if (text.size() > kMaxSourceBytes) {
            text.clear();
            error = source_too_large_message("'" + path + "'");
            return false;
        }
        if (got < want) break;
    }
    if (std::ferror(f.get())) {
        text.clear();
        error = "cannot read '" + path + "'";
        return false;
    }
    return true;
}

std::uint32_t SourceManager::add(std::string name, std::string text) {
    files_.push_back(std::make_unique<SourceFile>(std::move(name), std::move(text)));
    return static_cast<std::uint32_t>(files_.size());
}

std::string SourceManager::describe(Loc loc) const {
    if (!loc.valid()) return "<unknown>";
    const SourceFile& f = file(loc.file);
    LineCol lc = f.line_col(loc.begin);
    return f.name() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.col);
}

}  // namespace modc
