// compiler/backend/codegen_cuda_newton_schulz: the Newton-Schulz steps, direct, Gram, and to
// convergence (see codegen_cuda_generator.hpp).
#include "compiler/backend/codegen_cuda_generator.hpp"

#include <cmath>
#include <limits>

#include "support/diagnostics.hpp"

namespace modc::cuda::detail {

void Generator::emit_step_kernels(std::size_t gi, std::size_t si, const kp::Step& step, std::int64_t B, std::int64_t m,
                                  std::int64_t n, const std::string& origin, bool iterate, bool fold) {
    const auto& k = step.coeffs;
    const std::int64_t MM = m * m, MN = m * n;
    // P = a I + b A + c A A, so that X' = P X is one product (a X folded into P's diagonal), or
    // B = b A + c A A beside Y = a X (fold_identity). In bf16, A and A A are read and P written
    // as bf16. syrk wrote one triangle of A and A A; a gemm wrote both, which are then read as
    // they lie (coalesced).
    src_ << "\n// Newton-Schulz step " << si << ", (a, b, c) = (" << fmt("%.17g", k.a) << ", " << fmt("%.17g", k.b)
         << ", " << fmt("%.17g", k.c) << "): " << (fold ? "P = a I + b A" : "B = b A") << (k.c != 0 ? " + c A A" : "")
         << ", both triangles, from " << (symmetric_ ? "the upper triangle of A" : "A") << (k.c != 0 ? " and A A" : "")
         << (half_ ? ", in bf16" : "")
         << (iterate ? (fold ? "; P = I for a matrix that has converged" : "; B = 0 for a matrix that has converged") : "")
         << ".\n";
    const std::string in = half_ ? "const unsigned short* __restrict__ " : "const " + t_ + "* __restrict__ ";
    std::string params = (half_ ? "unsigned short* __restrict__ out" : ptr("out")) + ", " + in + "a";
    if (k.c != 0) params += ", " + in + "aa";
    if (iterate) params += ", const unsigned int* __restrict__ done";
    begin(KernelNames::poly(gi, si), origin, params);
    loop("e", B * MM);
    emit_split(B, MM, m);
    if (symmetric_)
        src_ << "        const " << index_type(B * MM) << " u = " << (B > 1 ? "b * " + num(MM) + " + " : "") << "(i <= j ? i * "
             << m << " + j : j * " << m << " + i);\n";
    else
        src_ << "        const " << index_type(B * MM) << " u = e;\n";
    auto read = [&](const std::string& name) { return half_ ? "modc_bf16_to_f32(" + name + "[u])" : name + "[u]"; };
    std::string value = real(k.b) + " * " + read("a");
    if (k.c != 0) value += " + " + real(k.c) + " * " + read("aa");
    if (fold) value += " + (i == j ? " + real(k.a) + " : " + real(0) + ")";
    if (iterate) {
        const std::string stay = fold ? "(i == j ? " + real(1) + " : " + real(0) + ")" : real(0);
        value = std::string(B > 1 ? "done[b]" : "done[0]") + " ? " + stay + " : " + value;
    }
    src_ << "        out[e] = " << to_half(half_, value) << ";\n    }\n";
    end();
    if (fold) return;

    MODC_ASSERT(!half_, "bf16 folds a X into P");
    src_ << "\n// Y = " << fmt("%.17g", k.a) << " X (cuBLAS then adds B X)" << (iterate ? "; Y = X once converged" : "") << ".\n";
    params = ptr("y") + ", " + ptr("x", true);
    if (iterate) params += ", const unsigned int* __restrict__ done";
    begin(KernelNames::axpy(gi, si), origin, params);
    loop("e", B * MN);
    if (iterate)
        src_ << "        y[e] = done[e / " << MN << "] ? x[e] : " << real(k.a) << " * x[e];\n    }\n";
    else
        src_ << "        y[e] = " << real(k.a) << " * x[e];\n    }\n";
    end();
}

void Generator::emit_convergence_kernels(const kp::Group&, std::size_t gi, std::int64_t B, std::int64_t MN,
                                         const std::string& origin, const kp::Step& step) {
    // In doubles: the squares of an f32 X of 1e-31 (a gradient of 1e-38 over ||G|| + eps) underflow
    // to zero, which the test would read as converged after one step.
    src_ << "\n// acc[2 b] += ||X'_b - X_b||^2, acc[2 b + 1] += ||X_b||^2 (X' the new iterate), in doubles, one atomic\n"
         << "// per block.\n";
    begin(KernelNames::change(gi), origin,
          ptr("x_new", true) + ", " + ptr("x_old", true) + ", double* __restrict__ acc" + (half_ ? ", unsigned short* __restrict__ xh" : ""));
    src_ << "    const int b = blockIdx.y;\n";
    block_shared(2);
    src_ << "    x_new += " << product("b", MN, B * MN) << ";\n    x_old += " << product("b", MN, B * MN) << ";\n";
    if (half_) src_ << "    xh += " << product("b", MN, B * MN) << ";  // the next step's GEMM input\n";
    src_ << "    double sums[2] = {0.0, 0.0};\n";
    loop("i", MN);
    src_ << "        const double old = (double)x_old[i];\n";
    src_ << "        const double d = (double)x_new[i] - old;\n";
    if (half_) src_ << "        xh[i] = modc_f32_to_bf16(x_new[i]);\n";
    src_ << "        sums[0] += d * d;\n        sums[1] += old * old;\n    }\n";
    src_ << "    modc_block_sum(sums, 2, part, warps);\n";
    src_ << "    if (threadIdx.x == 0 && sums[0] != 0.0) atomicAdd(&acc[2 * b], sums[0]);\n";
    src_ << "    if (threadIdx.x == 0 && sums[1] != 0.0) atomicAdd(&acc[2 * b + 1], sums[1]);\n";
    end();

    // tf32 and bf16 GEMMs round X to 11 and 8 bits each step, which moves it by about 2^-12
    // and 2^-9 relative: the change stalls there, so the test stops a little above (2^-10 and
    // 2^-8; a looser test stops before small singular values have grown to 1).
    double tolerance = std::max(step.tolerance, precision_ == kp::Precision::BF16   ? std::ldexp(1.0, -8)
                                                : precision_ == kp::Precision::TF32 ? std::ldexp(1.0, -10)
                                                : 30.0 * (f32_ ? std::numeric_limits<float>::epsilon()
                                                               : std::numeric_limits<double>::epsilon()));
    src_ << "\n// A matrix has converged once ||X' - X||_F / ||X||_F <= " << fmt("%.6g", tolerance)
         << " (at most " << step.max_steps << " steps); then zero acc for the next step.\n";
    begin(CudaKernelNames::converged(gi), origin, "double* __restrict__ acc, unsigned int* __restrict__ done");
    loop("b", B);
    src_ << "        const double norm = sqrt(acc[2 * b + 1]);\n";
    src_ << "        const double ratio = sqrt(acc[2 * b]) * (norm == 0.0 ? 0.0 : 1.0 / norm);\n";
    src_ << "        if (ratio <= " << fmt("%.17g", tolerance) << ") done[b] = 1u;\n";
    src_ << "        acc[2 * b] = 0.0;\n        acc[2 * b + 1] = 0.0;\n    }\n";
    end();
}

// One direct Newton-Schulz step: A = X X^T, [A A], P = a I + b A + c A A, X' = P X. In bf16
// every GEMM reads and writes bf16 but the one that makes the last X (the cubic schedule's
// every X), which f32 kernels read. The last step of a fixed schedule may write the updates.
void Generator::step_ops(std::size_t gi, std::size_t si, const kp::Step& step, std::int64_t B, std::int64_t m, std::int64_t n,
                         bool iterate, Buffer x, Buffer y, std::int64_t done_at, bool last) {
    const std::int64_t MM = m * m;
    const auto& k = step.coeffs;
    const Buffer xs = half_ ? xh_ : x;
    self_product(symmetric_, xcol_, B, m, n, xs, h(Buffer::A), "A = X X^T");
    if (k.c != 0) {
        if (symmetric_) symmetrize(gi, B, MM, Buffer::A, "fill A's lower triangle");
        self_product(symmetric_, false, B, m, m, h(Buffer::A), h(Buffer::AA), "AA = A A");
    }
    std::vector<Operand> args{work(h(Buffer::B), 0), work(h(Buffer::A), 0)};
    if (k.c != 0) args.push_back(work(h(Buffer::AA), 0));
    if (iterate) args.push_back(bytes(Buffer::Scratch, done_at));
    launch(KernelNames::poly(gi, si), {grid_for(B * MM), 1, 1}, args, "P = a I + b A + c A A", poly_work(k, B * MM, h(Buffer::B)));
    if (last && !iterate && into_updates(*group_)) return product_into_updates(*group_, m, n, h(Buffer::B), xs);
    if (!fold_identity(*group_)) {  // Y = a X, then Y += B X
        const std::int64_t MN = m * n;
        std::vector<Operand> axpy_args{work(y, 0), work(x, 0)};
        if (iterate) axpy_args.push_back(bytes(Buffer::Scratch, done_at));
        launch(KernelNames::axpy(gi, si), {grid_for(B * MN), 1, 1}, axpy_args, "Y = a X",
               {1.0 * B * MN, wide_bytes(B * MN), wide_bytes(B * MN)});
        left_product(symmetric_, xcol_, B, m, n, work(h(Buffer::B), 0), work(x, 0), work(y, 0), 1, "Y += B X", 1);
        return;
    }
    // In bf16 the next X stays bf16 (Yh), but the last one and the cubic schedule's.
    const bool wide_out = !half_ || iterate || last;
    left_product(symmetric_, xcol_, B, m, n, work(h(Buffer::B), 0), work(xs, 0), work(wide_out ? y : yh_, 0), 1, "X' = P X");
    if (!wide_out) std::swap(xh_, yh_);
}

// Gram Newton-Schulz (kernel_plan.hpp, Group::gram), as the CPU backend runs it: the steps on
// m x m matrices, then X' = Q X (once, or twice with a restart). Q and T are two more m x m
// work buffers. Returns the buffer holding the result. In bf16 the same ops on the bf16
// buffers (h()), every GEMM writing bf16 but the last X' = Q X, which finish reads in f32.
Buffer Generator::gram_newton_schulz(const kp::Group& g, std::size_t gi, std::int64_t B, std::int64_t m, std::int64_t n,
                                     const std::string& origin) {
    const bool symmetric = symmetric_;
    const std::int64_t MM = m * m;
    need(h(Buffer::Q), bytes_of(h(Buffer::Q), B * MM));
    need(h(Buffer::T), bytes_of(h(Buffer::T), B * MM));
    const auto steps = kp::gram_steps(g);
    for (const auto& s : steps) emit_step_kernels(gi, s.step, g.steps[s.step], B, m, n, origin, false, true);

    Buffer x = h(Buffer::X), y = h(Buffer::Y), a = h(Buffer::A), q = h(Buffer::Q), spare = h(Buffer::T);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto& [step, first, last] = steps[i];
        if (first) {
            self_product(symmetric, xcol_, B, m, n, x, a, "A = G = X X^T");
            if (symmetric) symmetrize(gi, B, MM, a, "fill A's lower triangle");
        }
        self_product(symmetric, false, B, m, m, a, h(Buffer::AA), "AA = A A");
        // The first P of a run is Q itself; later ones go to B and multiply Q.
        const Buffer p = first ? q : h(Buffer::B);
        launch(KernelNames::poly(gi, step), {grid_for(B * MM), 1, 1}, {work(p, 0), work(a, 0), work(h(Buffer::AA), 0)},
               "P = a I + b A + c A A", poly_work(g.steps[step].coeffs, B * MM, p));
        if (!first) {
            left_product(symmetric, false, B, m, m, work(p, 0), work(q, 0), work(spare, 0), 1, "Q = P Q");
            std::swap(q, spare);
        }
        if (!last) {
            self_product(symmetric, false, B, m, m, p, h(Buffer::AA), "AA = P P");
            left_product(symmetric, false, B, m, m, work(h(Buffer::AA), 0), work(a, 0), work(spare, 0), 1, "A = P P A");
            std::swap(a, spare);
            // Symmetric only in exact arithmetic: the next A A (syrk, or a transposed gemm)
            // computes A A^T, so an asymmetry would grow every step (as the CPU backend, keep
            // the upper triangle).
            symmetrize(gi, B, MM, a, "make A symmetric");
        } else {
            // In bf16 the final X goes to Y in f32, or into the updates; one before a restart
            // stays bf16.
            if (i + 1 == steps.size() && into_updates(g)) {
                product_into_updates(g, m, n, q, x, "Q");
                break;
            }
            const Buffer out = half_ && i + 1 == steps.size() ? Buffer::Y : y;
            left_product(symmetric, xcol_, B, m, n, work(q, 0), work(x, 0), work(out, 0), 1, "X' = Q X");
            if (out == y) std::swap(x, y);
            else x = out;
        }
    }
    return x;
}

}  // namespace modc::cuda::detail
