// compiler/backend/codegen_cuda_closed: the closed-form maps, one kernel per weight after the
// reductions it needs (see codegen_cuda_generator.hpp).
#include "compiler/backend/codegen_cuda_generator.hpp"

#include "support/diagnostics.hpp"

namespace modc::cuda::detail {

namespace {

// NormalizeRows: the kernel that turns each row's sums of squares into 1 / its norm.
std::string rownorm_name(std::size_t g) { return "g" + std::to_string(g) + "_rownorm"; }

}  // namespace

// ---- closed forms ----

void Generator::closed(const kp::Group& g, std::size_t gi) {
    const std::int64_t E = g.elements(), rows = g.rows, cols = g.cols;
    const std::int64_t M = static_cast<std::int64_t>(g.members.size());
    const std::string& origin = g.members.front().origin;
    std::string shape;
    for (auto d : g.shape) shape += (shape.empty() ? "" : " x ") + num(d);
    comment("Group " + num(static_cast<std::int64_t>(gi)) + ": " + modc::to_string(g.map) + " of " + num(M) + " x [" +
            shape + "].");
    listing_ << "//\n// group " << gi << " (" << modc::to_string(g.map) << " of " << M << " x [" << shape << "])\n";
    const std::string I = index_type(E);
    // Reductions shared by the members, into scratch (one slot or row of slots per member).
    std::int64_t per_member = 0;  // scratch elements per member
    switch (g.map) {
        case MapKind::NormalizeRows: per_member = rows; break;
        case MapKind::Normalize: per_member = fused_norm(E) ? 0 : 1; break;  // else one block sums
        case MapKind::MaxCoordinate: per_member = 2; break;
        default: break;
    }
    const bool keys = g.map == MapKind::MaxCoordinate;
    // Sums of squares take slots_ doubles each; the keys one unsigned long long.
    if (!keys) per_member *= slots_;
    if (per_member > 0) {
        need(Buffer::Scratch, M * per_member * 8);
        src_ << "\n// Zero the scratch of every member" << (keys ? " (keys[0]: max |g| bits, keys[1]: its first index)" : "") << ".\n";
        begin(CudaKernelNames::clear(gi), origin, keys ? "unsigned long long* __restrict__ keys" : "double* __restrict__ sums");
        loop("i", M * per_member);
        if (keys)
            src_ << "        keys[i] = i % 2 == 0 ? 0ull : ~0ull;\n    }\n";
        else
            src_ << "        sums[i] = 0.0;\n    }\n";
        end();
        launch(CudaKernelNames::clear(gi), {grid_for(M * per_member), 1, 1}, {bytes(Buffer::Scratch, 0)}, "zero the group's scratch",
               {0, 0, M * per_member * 8});
    }
    if (g.map == MapKind::NormalizeRows) {
        const std::int64_t lanes = std::min<std::int64_t>(32, cols);
        src_ << "\n// sums[row] += the squares of the row; " << lanes << " threads per row, each every " << lanes
             << "th column.\n";
        begin(CudaKernelNames::sumsq(gi), origin, grad_ptr() + ", double* __restrict__ sums");
        loop("t", rows * lanes);
        std::string T = index_type(rows * lanes);
        src_ << "        const " << T << " row = t / " << lanes << ", lane = t % " << lanes << ";\n";
        src_ << "        double acc[" << slots_ << "] = {};\n";
        src_ << "        for (" << I << " col = lane; col < " << cols << "; col += " << lanes << ") {\n";
        src_ << "            modc_ssq_add(acc, " << load_grad("(" + I + ")row * " + num(cols) + " + col") << ");\n        }\n";
        src_ << "        modc_ssq_flush(sums + " << ssq_at("row") << ", acc);\n    }\n";
        end();
        // The norm of each row once, not once per element.
        src_ << "\n// sums[row] = 1 / ||row||_2 (0 for a zero row), from the row's sums of squares.\n";
        begin(rownorm_name(gi), origin, "double* __restrict__ sums");
        loop("row", rows);
        src_ << "        const double norm = modc_ssq_norm(sums + " << ssq_at("row") << ");\n";
        src_ << "        sums[" << ssq_at("row") << "] = norm == 0.0 ? 0.0 : 1.0 / norm;\n    }\n";
        end();
    }
    const bool fused = g.map == MapKind::Normalize && fused_norm(E);
    if (g.map == MapKind::Normalize && !fused) {
        src_ << "\n// sums[0] += the squares of the gradient, one atomic per block.\n";
        begin(CudaKernelNames::sumsq(gi), origin, grad_ptr() + ", double* __restrict__ sums");
        block_shared(slots_);
        src_ << "    double acc[" << slots_ << "] = {};\n";
        loop("i", E);
        src_ << "        modc_ssq_add(acc, " << load_grad("i") << ");\n    }\n";
        src_ << "    modc_block_sum(acc, " << slots_ << ", part, warps);\n";
        src_ << "    if (threadIdx.x == 0) modc_ssq_flush(sums, acc);\n";
        end();
    }
    if (keys) {
        std::string bits = f32_ ? "(unsigned long long)__float_as_uint(fabsf(v))"
                                : "(unsigned long long)__double_as_longlong(fabs(v))";
        src_ << "\n// keys[0] = the largest |g_i| (as bits: for non-negative numbers they order the same); NaN is skipped.\n";
        begin(CudaKernelNames::maxabs(gi), origin, grad_ptr() + ", unsigned long long* __restrict__ keys");
        src_ << "    unsigned long long best = 0ull;\n";
        loop("i", E);
        src_ << "        const " << t_ << " v = " << load_grad("i") << ";\n";
        src_ << "        if (v == v && " << bits << " > best) best = " << bits << ";\n    }\n";
        src_ << "    if (best != 0ull) atomicMax(&keys[0], best);\n";
        end();
        src_ << "\n// keys[1] = the first i with |g_i| = keys[0].\n";
        begin(CudaKernelNames::argmax(gi), origin, grad_ptr() + ", unsigned long long* __restrict__ keys");
        src_ << "    const unsigned long long best = keys[0];\n";
        loop("i", E);
        src_ << "        const " << t_ << " v = " << load_grad("i") << ";\n";
        src_ << "        if (v == v && " << bits << " == best) {\n";
        src_ << "            atomicMin(&keys[1], (unsigned long long)i);\n            break;\n        }\n    }\n";
        end();
    }
    for (std::size_t j = 0; j < g.members.size(); ++j) {
        const auto& member = g.members[j];
        const int leaf = member.leaf;
        const std::string scale = real(member.scale);
        const std::int64_t at = static_cast<std::int64_t>(j) * per_member;
        if (g.map == MapKind::NormalizeRows || (g.map == MapKind::Normalize && !fused))
            launch(CudaKernelNames::sumsq(gi),
                   {reduce_grid_for(g.map == MapKind::NormalizeRows ? rows * std::min<std::int64_t>(32, cols) : E), 1, 1},
                   {grad(leaf), bytes(Buffer::Scratch, at * 8)}, "sums of squares of " + member.path,
                   {2.0 * E, grad_bytes(E), 0});
        if (g.map == MapKind::NormalizeRows)
            launch(rownorm_name(gi), {grid_for(rows), 1, 1}, {bytes(Buffer::Scratch, at * 8)}, "1 / ||row||_2 of each row",
                   {2.0 * rows, rows * slots_ * 8, rows * 8});
        if (keys) {
            launch(CudaKernelNames::maxabs(gi), {reduce_grid_for(E), 1, 1}, {grad(leaf), bytes(Buffer::Scratch, at * 8)},
                   "largest |g| of " + member.path, {1.0 * E, grad_bytes(E), 0});
            launch(CudaKernelNames::argmax(gi), {reduce_grid_for(E), 1, 1}, {grad(leaf), bytes(Buffer::Scratch, at * 8)},
                   "where it is", {1.0 * E, grad_bytes(E), 0});
        }
        std::string what;
        switch (g.map) {
            case MapKind::NormalizeColumns: what = "each column / ||column||_2"; break;
            case MapKind::NormalizeRows: what = "each row / ||row||_2"; break;
            case MapKind::Normalize: what = "G / ||G||_2"; break;
            case MapKind::Sign: what = "sign(G)"; break;
            case MapKind::MaxCoordinate: what = "sign(g_i) at the first largest |g_i|, 0 elsewhere"; break;
            default: MODC_ASSERT(false, "not a closed-form map");
        }
        src_ << "\n// update = " << fmt("%.9g", member.scale) << " * " << what << ", for weight #" << leaf << " "
             << member.path << ".\n";
        std::string params = update_ptr() + ", " + grad_ptr();
        if (per_member > 0) params += keys ? ", const unsigned long long* __restrict__ keys" : ", const double* __restrict__ sums";
        begin(KernelNames::closed(gi, j), member.origin, params);
        switch (g.map) {
            case MapKind::NormalizeColumns: {
                loop("col", cols);
                src_ << "        double acc[" << slots_ << "] = {};\n";
                src_ << "        for (" << I << " row = 0; row < " << rows << "; ++row) modc_ssq_add(acc, "
                     << load_grad("row * " + num(cols) + " + col") << ");\n";
                src_ << "        const double norm = modc_ssq_norm(acc);\n";
                src_ << "        const double f = " << wide(member.scale) << " * (norm == 0.0 ? 0.0 : 1.0 / norm);\n";
                src_ << "        for (" << I << " row = 0; row < " << rows << "; ++row) update[row * " << cols
                     << " + col] = " << narrow(from_wide(load_grad("row * " + num(cols) + " + col") + " * f")) << ";\n    }\n";
                break;
            }
            case MapKind::NormalizeRows:
                loop("i", E);
                src_ << "        update[i] = "
                     << narrow(from_wide(load_grad("i") + " * (" + wide(member.scale) + " * sums[" +
                                         ssq_at("i / " + num(cols)) + "])"))
                     << ";\n    }\n";
                break;
            case MapKind::Normalize:
                if (fused) {  // one block: its sum of squares, then the update
                    block_shared(slots_);
                    src_ << "    double sums[" << slots_ << "] = {};\n";
                    src_ << "    for (" << I << " i = threadIdx.x; i < " << E << "; i += blockDim.x) modc_ssq_add(sums, "
                         << load_grad("i") << ");\n";
                    src_ << "    modc_block_sum(sums, " << slots_ << ", part, warps);\n";
                }
                src_ << "    const double norm = modc_ssq_norm(sums);\n";
                src_ << "    const double f = " << wide(member.scale) << " * (norm == 0.0 ? 0.0 : 1.0 / norm);\n";
                if (fused)
                    src_ << "    for (" << I << " i = threadIdx.x; i < " << E << "; i += blockDim.x) {\n";
                else
                    loop("i", E);
                src_ << "        update[i] = " << narrow(from_wide(load_grad("i") + " * f")) << ";\n    }\n";
                break;
            case MapKind::Sign:
                loop("i", E);
                src_ << "        const " << t_ << " v = " << load_grad("i") << ";\n";
                src_ << "        update[i] = "
                     << narrow(scale + " * (v > " + real(0) + " ? " + real(1) + " : v < " + real(0) + " ? " + real(-1) + " : " +
                               real(0) + ")")
                     << ";\n    }\n";
                break;
            case MapKind::MaxCoordinate:
                src_ << "    const unsigned long long where = keys[1];\n";
                loop("i", E);
                src_ << "        const " << t_ << " v = " << load_grad("i") << ";\n";
                src_ << "        update[i] = "
                     << narrow("(unsigned long long)i != where ? " + real(0) + " : " + scale + " * (v > " + real(0) + " ? " +
                               real(1) + " : v < " + real(0) + " ? " + real(-1) + " : " + real(0) + ")")
                     << ";\n    }\n";
                break;
            default: break;
        }
        end();
        std::vector<Operand> args{update(leaf), grad(leaf)};
        if (per_member > 0) args.push_back(bytes(Buffer::Scratch, at * 8));
        std::int64_t count = g.map == MapKind::NormalizeColumns ? cols : E;
        // NormalizeColumns reads each column twice (its norm, then the update), a fused
        // Normalize the whole gradient.
        const bool twice = g.map == MapKind::NormalizeColumns || fused;
        launch(KernelNames::closed(gi, j), {fused ? 1u : grid_for(count), 1, 1}, args,
               (fused ? "||G||_2 and the update of " : "update of ") + member.path,
               {(twice ? 3.0 : 1.0) * E, grad_bytes(E) * (twice ? 2 : 1), grad_bytes(E)});
    }
}

}  // namespace modc::cuda::detail
