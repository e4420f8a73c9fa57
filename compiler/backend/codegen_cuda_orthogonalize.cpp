// compiler/backend/codegen_cuda_orthogonalize: an orthogonalising group: its norms, X, the
// steps, the updates (see codegen_cuda_generator.hpp).
#include "compiler/backend/codegen_cuda_generator.hpp"

#include "support/diagnostics.hpp"

namespace modc::cuda::detail {

// ---- orthogonalising groups ----

void Generator::orthogonalize(const kp::Group& g, std::size_t gi) {
    for (const auto& s : g.steps)
        if (s.kind == kp::StepKind::SvdPolar) {
            std::string names;
            for (const auto& m : g.members) names += (names.empty() ? "" : ", ") + m.path;
            throw Unsupported("the svd schedule has no CUDA form (it needs an SVD on the GPU); it was asked for " +
                              names + ": choose another schedule, or use --backend cpu");
        }
    const std::int64_t S = g.slices, B = static_cast<std::int64_t>(g.members.size()) * S;
    const std::int64_t m = g.small(), n = g.large(), MN = m * n, MM = m * m, E = g.rows * g.cols;
    if (B > 65535 || m > INT_MAX || n > INT_MAX)
        throw Unsupported("group " + num(static_cast<std::int64_t>(gi)) + " has " + num(B) + " matrices of " + num(m) + " x " +
                          num(n) + ": more than the CUDA backend's launches and cuBLAS calls take");
    // syrk and symm have no tf32 or bf16 forms: tensor-core precisions always run GemmEx.
    const bool symmetric = precision_ == kp::Precision::F32 &&
                           (o_.matmul == MatmulMode::Symmetric || (o_.matmul == MatmulMode::Auto && B == 1));
    const std::string& origin = g.members.front().origin;
    group_ = &g;
    symmetric_ = symmetric;
    xcol_ = g.transpose;
    bool converge = false;
    const kp::Step* normalize = nullptr;
    for (const auto& s : g.steps) {
        converge |= s.kind == kp::StepKind::IterateToConvergence;
        if (s.kind == kp::StepKind::Normalize) normalize = &s;
    }
    MODC_ASSERT(normalize != nullptr, "an orthogonalising group starts with normalize");

    // Scratch: sums[B] (each `slots_` doubles; none where one block normalises each matrix);
    // with convergence also acc[2B] (||dX||^2, ||X||^2, doubles: in f32 the squares of a tiny X
    // underflow, and a zero change would read as converged) and done[B].
    const bool fused = fused_norm(E);
    const std::int64_t sums_bytes = fused ? 0 : B * slots_ * 8;
    const std::int64_t acc_at = align8(sums_bytes), done_at = align8(acc_at + 2 * B * 8);
    if (converge || !fused) need(Buffer::Scratch, converge ? done_at + 4 * B : sums_bytes);
    if (!half_ || converge) need(Buffer::X, B * MN * size_);
    if (!half_ || !into_updates(g)) need(Buffer::Y, B * MN * size_);
    if (!half_) {
        need(Buffer::A, B * MM * size_);
        need(Buffer::B, B * MM * size_);
    }
    if (half_) {  // X in f32 only for the last step's result (and the cubic schedule's test)
        need(Buffer::Xh, half_bytes(B * MN));
        need(Buffer::Yh, half_bytes(B * MN));
        need(Buffer::Ah, half_bytes(B * MM));
        need(Buffer::Bh, half_bytes(B * MM));
        xh_ = Buffer::Xh;
        yh_ = Buffer::Yh;
    }

    std::string shape;
    for (auto d : g.shape) shape += (shape.empty() ? "" : " x ") + num(d);
    comment("Group " + num(static_cast<std::int64_t>(gi)) + ": " + modc::to_string(g.map) + " of " +
            num(static_cast<std::int64_t>(g.members.size())) + " x [" + shape + "], schedule " + g.schedule +
            ". " + num(B) + (B == 1 ? " matrix of " : " matrices of ") + num(m) + " x " + num(n) +
            (g.transpose ? " (each the transpose of its gradient: X is the gradient's bytes, read column-major)" : "") +
            ", stacked in X; " +
            (symmetric ? "cuBLAS syrk and symm per matrix." : "cuBLAS strided-batched gemm for the group."));
    listing_ << "//\n// group " << gi << " (" << modc::to_string(g.map) << " of " << g.members.size() << " x [" << shape
             << "], " << g.schedule << ")\n";

    // g_clear: the sums of squares, and the convergence state
    if (!fused || converge) {
        src_ << "\n// Zero " << (fused ? "" : "the sums of squares") << (!fused && converge ? " and " : "")
             << (converge ? "the convergence state" : "") << ".\n";
        std::string params;
        if (!fused) params = "double* __restrict__ sums";
        if (converge) params += std::string(fused ? "" : ", ") + "double* __restrict__ acc, unsigned int* __restrict__ done";
        begin(CudaKernelNames::clear(gi), origin, params);
        loop("b", B);
        for (std::int64_t k = 0; k < slots_ && !fused; ++k)
            src_ << "        sums[" << ssq_at("b") << (k ? " + " + num(k) : "") << "] = 0.0;\n";
        if (converge) src_ << "        acc[2 * b] = 0.0;\n        acc[2 * b + 1] = 0.0;\n        done[b] = 0u;\n";
        src_ << "    }\n";
        end();
        std::vector<Operand> clear_args;
        if (!fused) clear_args.push_back(bytes(Buffer::Scratch, 0));
        if (converge) {
            clear_args.push_back(bytes(Buffer::Scratch, acc_at));
            clear_args.push_back(bytes(Buffer::Scratch, done_at));
        }
        launch(CudaKernelNames::clear(gi), {grid_for(B), 1, 1}, clear_args, "zero the group's scratch",
               {0, 0, sums_bytes + (converge ? 2 * B * 8 + 4 * B : 0)});
    }

    // g_sumsq: each block's part in shared memory, one atomic per block and sum
    const std::string slice = S > 1 ? " * " + num(S) + " + slice" : "";
    if (!fused) {
        src_ << "\n// sums[slice] += the squares of one " << g.rows << " x " << g.cols << " gradient"
             << (S > 1 ? " slice (kernel position blockIdx.y of " + num(S) + ")" : "") << ", one atomic per block.\n";
        begin(CudaKernelNames::sumsq(gi), origin, grad_ptr() + ", double* __restrict__ sums");
        if (S > 1) src_ << "    const int slice = blockIdx.y;\n";
        block_shared(slots_);
        src_ << "    double acc[" << slots_ << "] = {};\n";
        loop("i", E, E * S);
        src_ << "        modc_ssq_add(acc, " << load_grad("i" + slice) << ");\n    }\n";
        src_ << "    modc_block_sum(acc, " << slots_ << ", part, warps);\n";
        src_ << "    if (threadIdx.x == 0) modc_ssq_flush(sums" << (S > 1 ? " + " + ssq_at("slice") : "") << ", acc);\n";
        end();
    }

    // g_normalize. In bf16 it writes Xh, which the GEMMs read, and X only for the cubic
    // schedule, whose convergence test compares f32 iterates. A transposed group's X is the
    // gradient's own layout (its bytes, read column-major, are X: see codegen_cuda_products.cpp).
    // Where one block holds a matrix, it sums the squares too (one launch, no scratch).
    const bool x_wide = !half_ || converge, x_half = half_;
    src_ << "\n// X = G / (||G||_F * " << fmt("%.17g", normalize->norm_scale) << " + " << fmt("%.17g", normalize->eps) << ")"
         << (fused ? ", ||G||_F from one block per matrix" : "") << "; a zero gradient gives X = 0"
         << (x_half ? (x_wide ? "; also in bf16 (xh)" : "; in bf16 (xh)") : "") << ".\n";
    std::string params = grad_ptr();
    if (x_wide) params += ", " + ptr("x");
    if (x_half) params += ", unsigned short* __restrict__ xh";
    begin(KernelNames::normalize(gi), origin, params + (fused ? "" : ", const double* __restrict__ sums"));
    if (S > 1) {
        src_ << "    const int slice = blockIdx.y;\n";
        if (x_wide) src_ << "    x += " << product("slice", MN, S * MN) << ";\n";
        if (x_half) src_ << "    xh += " << product("slice", MN, S * MN) << ";\n";
    }
    const std::string I = index_type(E * S);
    if (fused) {
        block_shared(slots_);
        src_ << "    double sums[" << slots_ << "] = {};\n";
        src_ << "    for (" << I << " i = threadIdx.x; i < " << E << "; i += blockDim.x) modc_ssq_add(sums, " << load_grad("i" + slice)
             << ");\n";
        src_ << "    modc_block_sum(sums, " << slots_ << ", part, warps);\n";
    }
    src_ << "    const double d = modc_ssq_norm(sums" << (S > 1 && !fused ? " + " + ssq_at("slice") : "") << ") * "
         << wide(normalize->norm_scale) << " + " << wide(normalize->eps) << ";\n";
    src_ << "    const double inv = d == 0.0 ? 0.0 : 1.0 / d;\n";
    if (fused)
        src_ << "    for (" << I << " i = threadIdx.x; i < " << E << "; i += blockDim.x) {\n";
    else
        loop("i", E, E * S);
    src_ << "        const " << t_ << " v = " << from_wide(load_grad("i" + slice) + " * inv") << ";\n";
    if (x_wide) src_ << "        x[i] = v;\n";
    if (x_half) src_ << "        xh[i] = modc_f32_to_bf16(v);\n";
    src_ << "    }\n";
    end();

    for (std::size_t j = 0; j < g.members.size(); ++j) {
        int leaf = g.members[j].leaf;
        std::int64_t first = static_cast<std::int64_t>(j) * S;
        if (!fused)
            launch(CudaKernelNames::sumsq(gi), {reduce_grid_for(E), static_cast<unsigned>(S), 1},
                   {grad(leaf), bytes(Buffer::Scratch, first * slots_ * 8)}, "||G||_F^2 of " + g.members[j].path,
                   {2.0 * E * S, grad_bytes(E * S), 0});
        std::vector<Operand> args{grad(leaf)};
        if (x_wide) args.push_back(work(Buffer::X, first * MN));
        if (x_half) args.push_back(work(Buffer::Xh, first * MN));
        if (!fused) args.push_back(bytes(Buffer::Scratch, first * slots_ * 8));
        const std::string what = x_half ? (x_wide ? "X = G / ||G||_F, Xh = bf16(X)" : "Xh = bf16(G / ||G||_F)") : "X = G / ||G||_F";
        // Fused: the block reads G twice (the second time from its cache, but counted).
        launch(KernelNames::normalize(gi), {fused ? 1u : grid_for(E), static_cast<unsigned>(S), 1}, args,
               fused ? "||G||_F and " + what : what,
               {(fused ? 3.0 : 1.0) * E * S, grad_bytes(E * S) * (fused ? 2 : 1),
                (x_wide ? wide_bytes(E * S) : 0) + (x_half ? half_bytes(E * S) : 0)});
    }

    // Newton-Schulz steps: kernels once per step, ops once per application.
    bool any_square = false;
    for (const auto& s : g.steps) any_square |= (s.kind == kp::StepKind::NewtonSchulz || s.kind == kp::StepKind::IterateToConvergence) && s.coeffs.c != 0;
    if (any_square) need(half_ ? Buffer::AAh : Buffer::AA, bytes_of(h(Buffer::AA), B * MM));
    // Gram groups need it in every mode: A = P P A is symmetric only in exact arithmetic.
    if ((symmetric && any_square) || g.gram) {
        src_ << "\n// Copy the upper triangle of each A (what syrk wrote) into its lower one.\n";
        begin(KernelNames::symmetrize(gi), origin, half_ ? "unsigned short* __restrict__ a" : ptr("a"));
        loop("e", B * MM);
        emit_split(B, MM, m);
        std::string base = B > 1 ? "b * " + num(MM) + " + " : "";
        src_ << "        if (i > j) a[" << base << "i * " << m << " + j] = a[" << base << "j * " << m << " + i];\n    }\n";
        end();
    }
    Buffer x = Buffer::X, y = Buffer::Y;
    if (g.gram) x = gram_newton_schulz(g, gi, B, m, n, origin);
    std::size_t last_step = 0;  // the last fixed step's index: in bf16 it writes X in f32
    for (std::size_t si = 0; si < g.steps.size(); ++si)
        if (g.steps[si].kind == kp::StepKind::NewtonSchulz) last_step = si;
    for (std::size_t si = 0; si < g.steps.size() && !g.gram; ++si) {
        const auto& step = g.steps[si];
        if (step.kind != kp::StepKind::NewtonSchulz && step.kind != kp::StepKind::IterateToConvergence) continue;
        bool iterate = step.kind == kp::StepKind::IterateToConvergence;
        emit_step_kernels(gi, si, step, B, m, n, origin, iterate, fold_identity(g));
        if (iterate) emit_convergence_kernels(g, gi, B, MN, origin, step);
        int times = iterate ? step.max_steps : 1;
        std::vector<std::size_t> checks;  // Converged ops, whose resume is the op after the loop
        for (int it = 0; it < times; ++it) {
            if (iterate && it == 1) {
                listing_ << "//   ... the same " << (p_.ops.size() - iteration_start_) << " ops " << (times - 1)
                         << " more times, X and Y swapping each time (a converged matrix stays as it is); after every "
                         << kConvergedEvery << "th, the host goes on past the last once all " << B
                         << (B == 1 ? " matrix has" : " matrices have") << " converged\n";
                listing_on_ = false;
            }
            if (iterate && it == 0) iteration_start_ = p_.ops.size();
            if (half_ && !iterate) {  // X in bf16 between steps; the last one writes Y in f32
                step_ops(gi, si, step, B, m, n, iterate, x, Buffer::Y, done_at, si == last_step);
                x = Buffer::Y;
            } else {
                step_ops(gi, si, step, B, m, n, iterate, x, y, done_at, si == last_step);
                std::swap(x, y);
            }
            if (iterate) {
                std::vector<Operand> args{work(x, 0), work(y, 0), bytes(Buffer::Scratch, acc_at)};
                if (half_) args.push_back(work(Buffer::Xh, 0));
                launch(KernelNames::change(gi), {reduce_grid_for(MN), static_cast<unsigned>(B), 1}, args,
                       half_ ? "||X' - X||^2 and ||X||^2; Xh = bf16(X')" : "||X' - X||^2 and ||X||^2",
                       {5.0 * B * MN, wide_bytes(2 * B * MN), half_ ? half_bytes(B * MN) : 0});
                launch(CudaKernelNames::converged(gi), {grid_for(B), 1, 1},
                       {bytes(Buffer::Scratch, acc_at), bytes(Buffer::Scratch, done_at)}, "stop where it changed little",
                       {4.0 * B, 16 * B, 16 * B + 4 * B});
                if ((it + 1) % kConvergedEvery == 0 && it + 1 < times) {
                    checks.push_back(p_.ops.size());
                    p_.ops.push_back(Op{Converged{bytes(Buffer::Scratch, done_at), static_cast<int>(B), 0},
                                        "skip the steps left once every matrix has converged"});
                }
            }
        }
        for (auto c : checks) std::get<Converged>(p_.ops[c].what).resume = p_.ops.size();
        listing_on_ = true;
    }

    // g_mJ_finish (unless the last GEMM wrote the updates)
    for (std::size_t j = 0; j < g.members.size() && !into_updates(g); ++j) {
        const auto& member = g.members[j];
        src_ << "\n// update = " << fmt("%.9g", member.scale) << " * X" << (g.transpose ? "^T (X's bytes are the update's layout)" : "")
             << " for weight #" << member.leaf << " " << member.path << ".\n";
        begin(KernelNames::finish(gi, j), member.origin, update_ptr() + ", " + ptr("x", true));
        if (S > 1) src_ << "    const int slice = blockIdx.y;\n    x += " << product("slice", MN, S * MN) << ";\n";
        loop("i", E, E * S);
        src_ << "        update[i" << slice << "] = " << narrow(real(member.scale) + " * x[i]") << ";\n";
        src_ << "    }\n";
        end();
        launch(KernelNames::finish(gi, j), {grid_for(E), static_cast<unsigned>(S), 1},
               {update(member.leaf), work(x, static_cast<std::int64_t>(j) * S * MN)}, "update of " + member.path,
               {1.0 * E * S, wide_bytes(E * S), grad_bytes(E * S)});
    }
}

// b, i, j from a flat index e over B stacked m x m matrices.
void Generator::emit_split(std::int64_t B, std::int64_t MM, std::int64_t m) {
    std::string I = index_type(B * MM);
    if (B > 1) {
        src_ << "        const " << I << " b = e / " << MM << ", r = e % " << MM << ";\n";
        src_ << "        const " << I << " i = r / " << m << ", j = r % " << m << ";\n";
    } else {
        src_ << "        const " << I << " i = e / " << m << ", j = e % " << m << ";\n";
    }
}

// Copies A's upper triangle into its lower one (in bf16, of Ah).
void Generator::symmetrize(std::size_t gi, std::int64_t B, std::int64_t MM, Buffer a, const std::string& what) {
    launch(KernelNames::symmetrize(gi), {grid_for(B * MM), 1, 1}, {work(a, 0)}, what,
           {0, bytes_of(a, B * MM / 2), bytes_of(a, B * MM / 2)});
}

Work Generator::poly_work(const kp::Coeffs& k, std::int64_t count, Buffer out) const {
    return {(k.c != 0 ? 5.0 : 3.0) * count, bytes_of(h(Buffer::A), count) * (k.c != 0 ? 2 : 1), bytes_of(out, count)};
}

}  // namespace modc::cuda::detail
