// runtime/cuda/cache: a content-addressed disk cache for compiled kernels.
//
// An entry is one file, <dir>/<key>.bin, where the key is a SHA-256 of everything that decides
// its contents (for NVRTC: source, options and NVRTC's version). The file starts with a header
// holding the payload's size and SHA-256, so a truncated or damaged entry is detected, reported
// as Corrupt, and the caller compiles again and overwrites it. Entries are written to a temporary
// file in the same directory and renamed into place: a reader sees a whole entry or none, and two
// processes storing the same key at once both succeed (the last rename wins; both wrote the same).
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace modc::cuda {

std::string sha256_hex(const std::string& data);

class DiskCache {
public:
    explicit DiskCache(std::filesystem::path dir);
    // $MODC_CACHE_DIR, else $XDG_CACHE_HOME/modc, else $HOME/.cache/modc (empty if none is set).
    static std::filesystem::path default_dir();
    const std::filesystem::path& dir() const { return dir_; }

    // A key from the parts that decide an entry (each part length-prefixed, so they cannot run together).
    static std::string key(const std::vector<std::string>& parts);
    std::filesystem::path path_of(const std::string& key) const;

    enum class Status { Hit, Miss, Corrupt };
    struct Lookup {
        Status status = Status::Miss;
        std::string payload;  // Hit
        std::string why;      // Corrupt: what was wrong
    };
    Lookup load(const std::string& key) const;
    // Writes atomically; false (with the reason in *error) when it could not.
    bool store(const std::string& key, const std::string& payload, std::string* error = nullptr) const;

    // The payload for `key`: from the cache, or made by `make` (nullopt: failed, nothing stored)
    // and stored. `status` says which happened (a Corrupt entry was replaced).
    std::optional<std::string> get_or_make(const std::string& key, const std::function<std::optional<std::string>()>& make,
                                           Status* status = nullptr) const;

private:
    std::filesystem::path dir_;
};

}  // namespace modc::cuda
