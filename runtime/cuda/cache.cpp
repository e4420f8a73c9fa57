#include "runtime/cuda/cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace modc::cuda {

namespace {

// SHA-256 (FIPS 180-4).
class Sha256 {
public:
    void update(const unsigned char* data, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            block_[fill_++] = data[i];
            if (fill_ == 64) {
                compress();
                fill_ = 0;
            }
        }
        length_ += n;
    }
    std::string hex() {
        std::uint64_t bits = length_ * 8;
        unsigned char pad = 0x80;
        update(&pad, 1);
        unsigned char zero = 0;
        while (fill_ != 56) update(&zero, 1);
        for (int i = 7; i >= 0; --i) {
            unsigned char b = static_cast<unsigned char>(bits >> (8 * i));
            update(&b, 1);
        }
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (auto word : h_)
            for (int i = 28; i >= 0; i -= 4) out += digits[(word >> i) & 0xf];
        return out;
    }

private:
    std::array<std::uint32_t, 8> h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::array<unsigned char, 64> block_{};
    std::size_t fill_ = 0;
    std::uint64_t length_ = 0;

    static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
    void compress() {
        static const std::uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        std::uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = std::uint32_t(block_[4 * i]) << 24 | std::uint32_t(block_[4 * i + 1]) << 16 |
                   std::uint32_t(block_[4 * i + 2]) << 8 | std::uint32_t(block_[4 * i + 3]);
        for (int i = 16; i < 64; ++i) {
            std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
        for (int i = 0; i < 64; ++i) {
            std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        h_[0] += a; h_[1] += b; h_[2] += c; h_[3] += d;
        h_[4] += e; h_[5] += f; h_[6] += g; h_[7] += h;
    }
};

const char* kMagic = "modc-cache 1\n";

std::string frame(const std::string& payload) {
    std::ostringstream out;
    out << kMagic << "size " << payload.size() << "\nsha256 " << sha256_hex(payload) << "\n\n";
    return out.str() + payload;
}

// Writes all of `data` to a new file at `path` and flushes it to disk.
bool write_file(const std::filesystem::path& path, const std::string& data, std::string& error) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        error = "cannot create " + path.string() + ": " + std::strerror(errno);
        return false;
    }
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error = "cannot write " + path.string() + ": " + std::strerror(errno);
            ::close(fd);
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        error = "cannot write " + path.string() + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

}  // namespace

std::string sha256_hex(const std::string& data) {
    Sha256 h;
    h.update(reinterpret_cast<const unsigned char*>(data.data()), data.size());
    return h.hex();
}

DiskCache::DiskCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

std::filesystem::path DiskCache::default_dir() {
    if (const char* d = std::getenv("MODC_CACHE_DIR"); d && *d) return d;
    if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return std::filesystem::path(d) / "modc";
    if (const char* d = std::getenv("HOME"); d && *d) return std::filesystem::path(d) / ".cache" / "modc";
    return {};
}

std::string DiskCache::key(const std::vector<std::string>& parts) {
    std::string all;
    for (const auto& p : parts) all += std::to_string(p.size()) + ":" + p + ";";
    return sha256_hex(all);
}

std::filesystem::path DiskCache::path_of(const std::string& key) const { return dir_ / (key + ".bin"); }

DiskCache::Lookup DiskCache::load(const std::string& key) const {
    Lookup result;
    std::ifstream in(path_of(key), std::ios::binary);
    if (!in) return result;  // Miss
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string data = buffer.str();
    auto corrupt = [&](const std::string& why) {
        result.status = Status::Corrupt;
        result.why = path_of(key).string() + ": " + why;
        return result;
    };
    std::size_t magic = std::strlen(kMagic);
    if (data.compare(0, magic, kMagic) != 0) return corrupt("not a modc cache entry");
    std::size_t end = data.find("\n\n", magic);
    if (end == std::string::npos) return corrupt("the header is cut short");
    std::istringstream header(data.substr(magic, end - magic));
    std::string size_word, sha_word, sha;
    std::size_t size = 0;
    if (!(header >> size_word >> size >> sha_word >> sha) || size_word != "size" || sha_word != "sha256")
        return corrupt("the header is damaged");
    std::string payload = data.substr(end + 2);
    if (payload.size() != size)
        return corrupt("the payload has " + std::to_string(payload.size()) + " bytes, not " + std::to_string(size));
    if (sha256_hex(payload) != sha) return corrupt("the payload's checksum does not match");
    result.status = Status::Hit;
    result.payload = std::move(payload);
    return result;
}

bool DiskCache::store(const std::string& key, const std::string& payload, std::string* error) const {
    std::string why;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
        if (error) *error = "cannot create " + dir_.string() + ": " + ec.message();
        return false;
    }
    // A name no other writer uses: process, thread and a counter.
    static std::atomic<unsigned> counter{0};
    std::ostringstream tmp_name;
    tmp_name << key << ".tmp." << ::getpid() << "." << std::hash<std::thread::id>{}(std::this_thread::get_id()) << "."
             << counter++;
    std::filesystem::path tmp = dir_ / tmp_name.str();
    if (!write_file(tmp, frame(payload), why)) {
        std::filesystem::remove(tmp, ec);
        if (error) *error = why;
        return false;
    }
    std::filesystem::rename(tmp, path_of(key), ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        if (error) *error = "cannot rename into " + path_of(key).string() + ": " + ec.message();
        return false;
    }
    return true;
}

std::optional<std::string> DiskCache::get_or_make(const std::string& key,
                                                  const std::function<std::optional<std::string>()>& make,
                                                  Status* status) const {
    Lookup found = load(key);
    if (status) *status = found.status;
    if (found.status == Status::Hit) return std::move(found.payload);
    std::optional<std::string> made = make();
    if (made) store(key, *made);  // a cache that cannot be written only costs time
    return made;
}

}  // namespace modc::cuda
