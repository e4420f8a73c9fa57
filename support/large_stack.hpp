// Runs a function on a thread with a large stack of its own. The compiler recurses over
// nested input; its limits (kMaxNesting, kMaxExprDepth, kMaxCallDepth) are sized for this
// stack, not for whatever thread a library user happens to call from.
#pragma once
#include <pthread.h>

#include <exception>
#include <functional>

namespace modc {

inline constexpr std::size_t kCompilerStackBytes = std::size_t(512) << 20;

// Calls f() on a large-stack thread and waits; exceptions are rethrown in the caller.
inline void run_with_large_stack(const std::function<void()>& f) {
    struct Job {
        const std::function<void()>* f;
        std::exception_ptr error;
    } job{&f, nullptr};
    auto body = [](void* arg) -> void* {
        auto* j = static_cast<Job*>(arg);
        try {
            (*j->f)();
        } catch (...) {
            j->error = std::current_exception();
        }
        return nullptr;
    };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kCompilerStackBytes);
    pthread_t thread;
    if (pthread_create(&thread, &attr, body, &job) == 0)
        pthread_join(thread, nullptr);
    else
        body(&job);  // no thread to be had: run here rather than not at all
    pthread_attr_destroy(&attr);
    if (job.error) std::rethrow_exception(job.error);
}

}  // namespace modc
