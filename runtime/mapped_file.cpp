// Mapped input files and the SIGBUS report of one that shrinks; see mapped_file.hpp.
#include "runtime/mapped_file.hpp"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <system_error>

#include "runtime/tensor_io.hpp"

namespace modc::rt {
namespace {

// Live mappings, for the SIGBUS handler: slots in chunks that are appended lock-free and never
// freed, so the handler can walk them at any moment without a lock. `begin` is 0 for a free
// slot, 1 for one being filled in, the mapping's address once `end` and `path` are set.
struct Slot {
    std::atomic<std::uintptr_t> begin{0};
    std::atomic<std::uintptr_t> end{0};
    std::atomic<const char*> path{nullptr};
};
struct Chunk {
    Slot slots[256];
    std::atomic<Chunk*> next{nullptr};
};
Chunk first_chunk;
constexpr int kSlotsPerChunk = 256;

Slot& slot_at(int index) {
    Chunk* chunk = &first_chunk;
    for (int i = index / kSlotsPerChunk; i > 0; --i) chunk = chunk->next.load(std::memory_order_acquire);
    return chunk->slots[index % kSlotsPerChunk];
}

int claim_slot() {
    int base = 0;
    for (Chunk* chunk = &first_chunk;; chunk = chunk->next.load(std::memory_order_acquire), base += kSlotsPerChunk) {
        for (int i = 0; i < kSlotsPerChunk; ++i) {
            std::uintptr_t expected = 0;
            if (chunk->slots[i].begin.compare_exchange_strong(expected, 1)) return base + i;
        }
        if (!chunk->next.load(std::memory_order_acquire)) {
            auto* fresh = new Chunk;
            Chunk* none = nullptr;
            if (!chunk->next.compare_exchange_strong(none, fresh)) delete fresh;  // another thread appended one
        }
    }
}

// Temporaries to remove on a fault, in chunks as the mappings are: nullptr for a free slot.
struct PathChunk {
    std::atomic<const char*> paths[kSlotsPerChunk] = {};
    std::atomic<PathChunk*> next{nullptr};
};
PathChunk first_path_chunk;

std::atomic<const char*>& path_slot_at(int index) {
    PathChunk* chunk = &first_path_chunk;
    for (int i = index / kSlotsPerChunk; i > 0; --i) chunk = chunk->next.load(std::memory_order_acquire);
    return chunk->paths[index % kSlotsPerChunk];
}

int claim_path_slot(const char* path) {
    int base = 0;
    for (PathChunk* chunk = &first_path_chunk;; chunk = chunk->next.load(std::memory_order_acquire), base += kSlotsPerChunk) {
        for (int i = 0; i < kSlotsPerChunk; ++i) {
            const char* expected = nullptr;
            if (chunk->paths[i].compare_exchange_strong(expected, path)) return base + i;
        }
        if (!chunk->next.load(std::memory_order_acquire)) {
            auto* fresh = new PathChunk;
            PathChunk* none = nullptr;
            if (!chunk->next.compare_exchange_strong(none, fresh)) delete fresh;
        }
    }
}

// Files first, then the (then empty) directories that held them.
void remove_temporaries() {
    for (auto remove : {::unlink, ::rmdir})
        for (PathChunk* chunk = &first_path_chunk; chunk; chunk = chunk->next.load(std::memory_order_acquire))
            for (const auto& path : chunk->paths)
                if (const char* p = path.load(std::memory_order_acquire)) remove(p);
}

struct sigaction previous_sigbus;

void write_all(const char* text) {
    for (std::size_t n = std::strlen(text); n > 0;) {
        ssize_t k = ::write(STDERR_FILENO, text, n);
        if (k <= 0) return;
        text += k;
        n -= static_cast<std::size_t>(k);
    }
}

// Async-signal-safe: atomics, write(2), _exit(2).
void on_sigbus(int signal, siginfo_t* info, void* context) {
    const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    for (Chunk* chunk = &first_chunk; chunk; chunk = chunk->next.load(std::memory_order_acquire)) {
        for (const Slot& slot : chunk->slots) {
            const std::uintptr_t begin = slot.begin.load(std::memory_order_acquire);
            if (begin <= 1 || address < begin || address >= slot.end.load(std::memory_order_relaxed)) continue;
            write_all(program_invocation_short_name);
            write_all(": error: ");
            write_all(slot.path.load(std::memory_order_relaxed));
            write_all(": the file shrank while it was being read (truncated or rewritten by another process?); "
                      "nothing was written\n");
            remove_temporaries();
            ::_exit(1);
        }
    }
    // Not a mapped input: as before this handler was installed (re-raised when the access repeats).
    ::sigaction(SIGBUS, &previous_sigbus, nullptr);
    (void)signal;
    (void)context;
}

void install_sigbus_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_sigaction = on_sigbus;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGBUS, &action, &previous_sigbus);
    });
}

std::string errno_text(int err) { return std::system_category().message(err); }

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
    std::shared_ptr<MappedFile> file(new MappedFile);
    file->path_ = path;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw TensorError(path + ": cannot open: " + errno_text(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw TensorError(path + ": cannot open: " + errno_text(err));
    }
    file->size_ = static_cast<std::uint64_t>(st.st_size);
    if (file->size_ > 0) {
        install_sigbus_handler();
        // Writable but private: a caller updating a tensor in place (modc step) gets its own
        // copy of the pages it writes; the file never changes.
        void* p = ::mmap(nullptr, file->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        const int err = errno;
        ::close(fd);
        if (p == MAP_FAILED) throw TensorError(path + ": cannot map the file: " + errno_text(err));
        file->data_ = static_cast<std::byte*>(p);
        file->slot_ = claim_slot();
        Slot& slot = slot_at(file->slot_);
        slot.end.store(reinterpret_cast<std::uintptr_t>(p) + file->size_, std::memory_order_relaxed);
        slot.path.store(file->path_.c_str(), std::memory_order_relaxed);
        slot.begin.store(reinterpret_cast<std::uintptr_t>(p), std::memory_order_release);
    } else {
        ::close(fd);
    }
    return file;
}

RemoveOnFault::RemoveOnFault(std::string path) : path_(std::move(path)), slot_(claim_path_slot(path_.c_str())) {}

RemoveOnFault::~RemoveOnFault() { path_slot_at(slot_).store(nullptr, std::memory_order_release); }

MappedFile::~MappedFile() {
    if (slot_ >= 0) slot_at(slot_).begin.store(0, std::memory_order_release);
    if (data_) ::munmap(data_, size_);
}

}  // namespace modc::rt
