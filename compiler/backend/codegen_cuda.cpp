// compiler/backend/codegen_cuda: see codegen_cuda.hpp.
//
// Row-major matrices and cuBLAS. The plan's matrices are row-major: X (m x n) at X[i * n + j].
// cuBLAS is column-major, and the same bytes read column-major are X^T (n x m, leading
// dimension n). So, with Xc = X^T as cuBLAS sees it:
//   A = X X^T   = Xc^T Xc       syrk(trans = T, n = m, k = n, A = X, lda = n, C = A, ldc = m)
//   A A         = A^T A         syrk(trans = T, n = m, k = m, A = A, lda = m, ...)  (A symmetric)
//   Y += B X    : Yc += Xc B    symm(side = right, m = n, n = m, A = B, lda = m, B = X, ldb = n,
//                                    beta = 1, C = Y, ldc = n)                      (B symmetric)
// syrk writes one triangle; the column-major lower triangle (r >= c at r + c m) is the row-major
// upper one (i <= j at i m + j), which is what the CPU backend fills and what the kernels read.
// The batched forms are plain gemms with the same shapes (both triangles computed).
#include "compiler/backend/codegen_cuda.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "support/diagnostics.hpp"

namespace modc::cuda {

namespace {

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

std::int64_t align8(std::int64_t n) { return (n + 7) / 8 * 8; }

// NormalizeRows: the kernel that turns each row's sums of squares into 1 / its norm.
std::string rownorm_name(std::size_t g) { return "g" + std::to_string(g) + "_rownorm"; }

class Generator {
public:
    Generator(const kp::KernelPlan& plan, const CudaOptions& options) : plan_(plan), o_(options) {
        f32_ = o_.type == ElementType::F32;
        bf16_ = o_.storage == Storage::BF16;
        precision_ = plan.precision;
        half_ = precision_ == kp::Precision::BF16;
        t_ = f32_ ? "float" : "double";
        storage_t_ = bf16_ ? "unsigned short" : t_;
        size_ = f32_ ? 4 : 8;
        slots_ = f32_ ? 1 : 3;
        p_.network = plan.network;
        p_.schedule = plan.schedule;
        p_.type = o_.type;
        p_.storage = o_.storage;
        p_.precision = precision_;
        p_.leaf_count = plan.leaf_count;
        p_.leaf_elements.assign(plan.leaf_count, 0);
    }

    Program run() {
        header();
        ssq_helpers();
        for (std::size_t g = 0; g < plan_.groups.size(); ++g) {
            const auto& group = plan_.groups[g];
            for (const auto& m : group.members) p_.leaf_elements[static_cast<std::size_t>(m.leaf)] = group.elements();
            bool orthogonal = orthogonalizes(group.map);
            if (orthogonal)
                orthogonalize(group, g);
            else
                closed(group, g);
        }
        p_.source = src_.str();
        p_.source += "\n// The run, in order, on one stream (runtime/cuda captures it as one CUDA graph, or one per\n// stretch between the host's convergence checks):\n" + listing_.str();
        return std::move(p_);
    }

private:
    const kp::KernelPlan& plan_;
    CudaOptions o_;
    Program p_;
    bool f32_ = true;
    bool bf16_ = false;    // gradients and updates stored as bf16
    kp::Precision precision_ = kp::Precision::F32;  // of the GEMMs
    bool half_ = false;    // bf16 GEMMs: X, A, A A, P and Q live in the bf16 buffers Xh .. Th
    Buffer xh_ = Buffer::Xh, yh_ = Buffer::Yh;  // bf16: the current X, and where the next goes
    std::string t_;        // the compute type
    std::string storage_t_;  // the element type of gradients and updates
    std::int64_t size_ = 4;
    std::int64_t slots_ = 1;  // doubles per sum of squares: 1 in f32, 3 in f64 (see ssq_helpers)
    std::ostringstream src_;
    std::ostringstream listing_;
    bool listing_on_ = true;

    // ---- literals and small pieces of text ----

    std::string real(double v) const {
        if (f32_) {
            std::string s = fmt("%.9g", static_cast<double>(static_cast<float>(v)));
            if (s.find_first_of(".en") == std::string::npos) s += ".0";
            return s + "f";
        }
        std::string s = fmt("%.17g", v);
        if (s.find_first_of(".en") == std::string::npos) s += ".0";
        return s;
    }
    std::string sqrt_fn() const { return f32_ ? "sqrtf" : "sqrt"; }
    // A double literal (sums of squares, norms and the factors made from them are doubles).
    static std::string wide(double v) {
        std::string s = fmt("%.17g", v);
        if (s.find_first_of(".en") == std::string::npos) s += ".0";
        return s;
    }
    // A double value back to the compute type.
    std::string from_wide(const std::string& value) const { return f32_ ? "(float)(" + value + ")" : value; }
    // Where sum of squares number `index` starts in a `double* sums`.
    std::string ssq_at(const std::string& index) const {
        return slots_ == 1 ? index : num(slots_) + " * " + (index.find_first_of(" +-*/") == std::string::npos ? index : "(" + index + ")");
    }
    std::string fabs_fn() const { return f32_ ? "fabsf" : "fabs"; }
    static std::string num(std::int64_t v) { return std::to_string(v); }
    // The index type of a loop over `count` elements: int where it fits.
    static std::string index_type(std::int64_t count) { return count <= INT_MAX ? "int" : "long long"; }
    // "var * factor", computed in a type that holds `largest`.
    static std::string product(const std::string& var, std::int64_t factor, std::int64_t largest) {
        return (largest <= INT_MAX ? var : "(long long)" + var) + " * " + num(factor);
    }

    unsigned grid_for(std::int64_t count) const {
        std::int64_t blocks = (count + o_.block - 1) / o_.block;
        return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, o_.max_grid));
    }
    // Reductions end in one atomic per thread on a few addresses: fewer threads, more work each.
    unsigned reduce_grid_for(std::int64_t count) const { return std::min(grid_for(count), o_.max_reduce_grid); }

    // `#line 12 "file.mod"` from an origin "file.mod:12".
    std::string line_directive(const std::string& origin) const {
        auto colon = origin.rfind(':');
        if (origin.empty() || colon == std::string::npos || colon + 1 >= origin.size()) return "";
        std::string file;
        for (char ch : origin.substr(0, colon)) {
            if (ch == '"' || ch == '\\') file += '\\';
            file += ch;
        }
        return "#line " + origin.substr(colon + 1) + " \"" + file + "\"\n";
    }

    void header() {
        src_ << "// CUDA kernels for network " << plan_.network << ", schedule " << plan_.schedule << ", "
             << (f32_ ? "f32" : "f64") << (bf16_ ? " (gradients and updates in bf16)" : "")
             << ": generated by modc from the kernel plan (modc emit --emit plan).\n"
             << "// Compiled at run time with NVRTC; every shape and constant is a literal. Each kernel runs with\n"
             << "// " << o_.block << " threads per block and loops over its elements, whatever the grid; reductions\n"
             << "// accumulate with atomics into a scratch array zeroed by a _clear kernel. The listing at the end\n"
             << "// gives the order of the launches and of the cuBLAS calls between them.\n";
        if (precision_ != kp::Precision::F32)
            src_ << "// The GEMMs run on tensor cores in " << kp::to_string(precision_) << " with f32 accumulation"
                 << (half_ ? "; X, A, A A, P and Q are held in bf16 (Xh .. Th), the last X in f32" : "") << ".\n";
        if (bf16_ || half_)
            src_ << "\n// bf16 is held as its bits, the upper half of an f32: widening is exact. Narrowing rounds to\n"
                 << "// nearest, ties to even; a NaN stays a NaN (its payload may sit in the low half, which\n"
                 << "// rounding alone would turn into infinity).\n"
                 << "__device__ __forceinline__ float modc_bf16_to_f32(unsigned short h) {\n"
                 << "    return __uint_as_float((unsigned int)h << 16);\n"
                 << "}\n"
                 << "__device__ __forceinline__ unsigned short modc_f32_to_bf16(float f) {\n"
                 << "    const unsigned int u = __float_as_uint(f);\n"
                 << "    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x0040u);\n"
                 << "    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);\n"
                 << "}\n";
    }

    // The 2-norms that normalise (||G||_F, each row or column, the whole gradient) from sums of
    // squares that neither overflow nor underflow, kept in doubles: modc_ssq_add adds v^2 to a
    // thread's partial sums, modc_ssq_flush adds those to the shared ones with atomics,
    // modc_ssq_norm takes the square root. An f32 value is squared in double, where even
    // 3.4e38^2 and 1e-45^2 stay in range: one sum. f64 squares can leave the range (1e+160 and
    // 1e-160 do), so f64 keeps three sums as LAPACK's dnrm2 does (Blue's algorithm): of the small
    // values scaled up by 2^537, the medium ones as they are, and the large ones scaled down by
    // 2^-538; the norm combines them. Fixed scales let threads add their partial sums with atomics.
    void ssq_helpers() {
        const std::string v = f32_ ? "float" : "double";
        src_ << "\n// Sums of squares for the 2-norms, in double: "
             << (f32_ ? "an f32 value squared in double cannot overflow or underflow.\n"
                      : "small, medium and large values apart, scaled so that no square\n// overflows or underflows "
                        "(Blue's algorithm, as LAPACK's dnrm2).\n");
        if (f32_) {
            src_ << "__device__ __forceinline__ void modc_ssq_add(double* acc, float v) {\n"
                 << "    const double w = v;\n"
                 << "    acc[0] += w * w;\n"
                 << "}\n"
                 << "__device__ __forceinline__ void modc_ssq_flush(double* sums, const double* acc) {\n"
                 << "    if (acc[0] != 0.0) atomicAdd(&sums[0], acc[0]);\n"
                 << "}\n"
                 << "__device__ __forceinline__ double modc_ssq_norm(const double* s) { return sqrt(s[0]); }\n";
            return;
        }
        const std::string tsml = wide(std::ldexp(1.0, -511)), tbig = wide(std::ldexp(1.0, 486));
        const std::string ssml = wide(std::ldexp(1.0, 537)), sbig = wide(std::ldexp(1.0, -538));
        const std::string unsml = wide(std::ldexp(1.0, -537)), unbig = wide(std::ldexp(1.0, 538));
        src_ << "__device__ __forceinline__ void modc_ssq_add(double* acc, double v) {\n"
             << "    const double a = fabs(v);\n"
             << "    if (a > " << tbig << ") {  // 2^486\n"
             << "        const double w = v * " << sbig << ";  // 2^-538\n"
             << "        acc[2] += w * w;\n"
             << "    } else if (a < " << tsml << ") {  // 2^-511\n"
             << "        const double w = v * " << ssml << ";  // 2^537\n"
             << "        acc[0] += w * w;\n"
             << "    } else {\n"
             << "        acc[1] += v * v;\n"
             << "    }\n"
             << "}\n"
             << "__device__ __forceinline__ void modc_ssq_flush(double* sums, const double* acc) {\n"
             << "    if (acc[0] != 0.0) atomicAdd(&sums[0], acc[0]);\n"
             << "    if (acc[1] != 0.0) atomicAdd(&sums[1], acc[1]);\n"
             << "    if (acc[2] != 0.0) atomicAdd(&sums[2], acc[2]);\n"
             << "}\n"
             << "// sml holds the small squares times 2^1074, big the large ones times 2^-1076. Once there\n"
             << "// is a medium value, med >= 2^-1022, so the small ones, scaled back (rounded where they\n"
             << "// become subnormal), move it by a rounding at most; next to a large one, both others do.\n"
             << "__device__ __forceinline__ double modc_ssq_norm(const double* s) {\n"
             << "    const double sml = s[0], med = s[1], big = s[2];\n"
             << "    if (big > 0.0) return sqrt(big + (med * " << sbig << ") * " << sbig << ") * " << unbig << ";\n"
             << "    if (med != 0.0) return sqrt(med + (sml * " << unsml << ") * " << unsml << ");  // also for NaN\n"
             << "    return sqrt(sml) * " << unsml << ";\n"
             << "}\n";
    }

    void comment(const std::string& text) { src_ << "\n// " << text << "\n"; }

    // Starts a kernel: #line, signature, the grid-stride loop's index helpers.
    void begin(const std::string& name, const std::string& origin, const std::string& params) {
        src_ << line_directive(origin);
        src_ << "extern \"C\" __global__ void __launch_bounds__(" << o_.block << ") " << name << "(" << params << ") {\n";
        p_.kernels.push_back(name);
    }
    void end() { src_ << "}\n"; }
    // for (I i = first; i < count; i += stride) {
    // `largest`: the largest index computed from var (its type must hold it).
    void loop(const std::string& var, std::int64_t count, std::int64_t largest = 0) {
        src_ << "    for (" << index_type(std::max(count, largest)) << " " << var << " = blockIdx.x * blockDim.x + threadIdx.x; " << var
             << " < " << num(count) << "; " << var << " += gridDim.x * blockDim.x) {\n";
    }
    std::string ptr(const std::string& name, bool is_const = false) const {
        return std::string(is_const ? "const " : "") + t_ + "* __restrict__ " + name;
    }
    // Gradients and updates: pointers to the storage type; reads widen, writes narrow.
    std::string grad_ptr() const { return "const " + storage_t_ + "* __restrict__ grad"; }
    std::string update_ptr() const { return storage_t_ + "* __restrict__ update"; }
    std::string load_grad(const std::string& index) const {
        return bf16_ ? "modc_bf16_to_f32(grad[" + index + "])" : "grad[" + index + "]";
    }
    std::string narrow(const std::string& value) const { return bf16_ ? "modc_f32_to_bf16(" + value + ")" : value; }
    // A value of the compute type, rounded to bf16 where `half` (a GEMM input in precision bf16).
    static std::string to_half(bool half, const std::string& value) { return half ? "modc_f32_to_bf16(" + value + ")" : value; }

    // ---- the ops ----

    void note(const std::string& text) {
        if (listing_on_) listing_ << "//   " << text << "\n";
    }
    void launch(const std::string& kernel, std::array<unsigned, 3> grid, std::vector<Operand> args,
                const std::string& what, Work work) {
        Launch l;
        l.kernel = kernel;
        l.grid = grid;
        l.block = {o_.block, 1, 1};
        l.args = std::move(args);
        l.work = work;
        Op op{l, what};
        if (listing_on_) listing_ << "//   " << describe(op, o_.type, o_.storage) << "\n";
        p_.ops.push_back(std::move(op));
    }
    void matmul(Matmul mm, const std::string& what) {
        mm.precision = precision_;
        MODC_ASSERT(half_ == (is_bf16(mm.a.buffer) && is_bf16(mm.b.buffer)), "bf16 GEMMs read the bf16 buffers, others not");
        MODC_ASSERT(half_ || !is_bf16(mm.c.buffer), "only bf16 GEMMs write bf16");
        Op op{mm, what};
        if (listing_on_) listing_ << "//   " << describe(op, o_.type, o_.storage) << "\n";
        p_.ops.push_back(std::move(op));
    }
    Operand work(Buffer b, std::int64_t elements) const { return Operand{b, elements * (is_bf16(b) ? 2 : size_), -1}; }
    Operand bytes(Buffer b, std::int64_t offset) const { return Operand{b, offset, -1}; }
    static Operand grad(int leaf) { return Operand{Buffer::Grad, 0, leaf}; }
    static Operand update(int leaf) { return Operand{Buffer::Update, 0, leaf}; }
    // Bytes of `n` elements: of the compute type, of a gradient or update, of a bf16 copy.
    std::int64_t wide_bytes(std::int64_t n) const { return n * size_; }
    std::int64_t grad_bytes(std::int64_t n) const { return n * (bf16_ ? 2 : size_); }
    static std::int64_t half_bytes(std::int64_t n) { return n * 2; }
    std::int64_t bytes_of(Buffer b, std::int64_t n) const { return is_bf16(b) ? half_bytes(n) : wide_bytes(n); }
    // In bf16, the bf16 buffer that holds what `wide` holds in f32 (Newton-Schulz's state).
    Buffer h(Buffer wide) const {
        if (!half_) return wide;
        switch (wide) {
            case Buffer::X: return Buffer::Xh;
            case Buffer::Y: return Buffer::Yh;
            case Buffer::A: return Buffer::Ah;
            case Buffer::AA: return Buffer::AAh;
            case Buffer::B: return Buffer::Bh;
            case Buffer::Q: return Buffer::Qh;
            case Buffer::T: return Buffer::Th;
            default: return wide;
        }
    }
    void need(Buffer b, std::int64_t byte_count) {
        auto& slot = p_.bytes[static_cast<std::size_t>(b)];
        slot = std::max(slot, byte_count);
    }

    // ---- orthogonalising groups ----

    void orthogonalize(const kp::Group& g, std::size_t gi) {
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
        const std::string G = "g" + num(static_cast<std::int64_t>(gi));
        group_ = &g;
        bool converge = false;
        const kp::Step* normalize = nullptr;
        for (const auto& s : g.steps) {
            converge |= s.kind == kp::StepKind::IterateToConvergence;
            if (s.kind == kp::StepKind::Normalize) normalize = &s;
        }
        MODC_ASSERT(normalize != nullptr, "an orthogonalising group starts with normalize");

        // Scratch: sums[B] (each `slots_` doubles); with convergence also acc[2B] (||dX||^2,
        // ||X||^2) and done[B].
        const std::int64_t sums_bytes = B * slots_ * 8;
        const std::int64_t acc_at = align8(sums_bytes), done_at = align8(acc_at + 2 * B * size_);
        need(Buffer::Scratch, converge ? done_at + 4 * B : sums_bytes);
        if (!half_ || converge) need(Buffer::X, B * MN * size_);
        if (!into_updates(g)) need(Buffer::Y, B * MN * size_);
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
                (g.transpose ? " (each gradient transposed)" : "") + ", stacked in X; " +
                (symmetric ? "cuBLAS syrk and symm per matrix." : "cuBLAS strided-batched gemm for the group."));
        listing_ << "//\n// group " << gi << " (" << modc::to_string(g.map) << " of " << g.members.size() << " x [" << shape
                 << "], " << g.schedule << ")\n";

        // g_clear
        src_ << "\n// Zero the sums of squares" << (converge ? " and the convergence state" : "") << ".\n";
        begin(CudaKernelNames::clear(gi), origin,
              "double* __restrict__ sums" + (converge ? ", " + ptr("acc") + ", unsigned int* __restrict__ done" : ""));
        loop("b", B);
        for (std::int64_t k = 0; k < slots_; ++k)
            src_ << "        sums[" << ssq_at("b") << (k ? " + " + num(k) : "") << "] = 0.0;\n";
        if (converge) src_ << "        acc[2 * b] = " << real(0) << ";\n        acc[2 * b + 1] = " << real(0) << ";\n        done[b] = 0u;\n";
        src_ << "    }\n";
        end();
        std::vector<Operand> clear_args{bytes(Buffer::Scratch, 0)};
        if (converge) {
            clear_args.push_back(bytes(Buffer::Scratch, acc_at));
            clear_args.push_back(bytes(Buffer::Scratch, done_at));
        }
        launch(CudaKernelNames::clear(gi), {grid_for(B), 1, 1}, clear_args, "zero the group's scratch",
               {0, 0, B * slots_ * 8 + (converge ? 2 * B * size_ + 4 * B : 0)});

        // g_sumsq
        const std::string slice = S > 1 ? " * " + num(S) + " + slice" : "";
        src_ << "\n// sums[slice] += the squares of one " << g.rows << " x " << g.cols << " gradient"
             << (S > 1 ? " slice (kernel position blockIdx.y of " + num(S) + ")" : "") << ".\n";
        begin(CudaKernelNames::sumsq(gi), origin, grad_ptr() + ", double* __restrict__ sums");
        if (S > 1) src_ << "    const int slice = blockIdx.y;\n";
        src_ << "    double acc[" << slots_ << "] = {};\n";
        loop("i", E, E * S);
        src_ << "        modc_ssq_add(acc, " << load_grad("i" + slice) << ");\n    }\n";
        src_ << "    modc_ssq_flush(sums" << (S > 1 ? " + " + ssq_at("slice") : "") << ", acc);\n";
        end();

        // g_normalize. In bf16 it writes Xh, which the GEMMs read, and X only for the cubic
        // schedule, whose convergence test compares f32 iterates.
        const bool x_wide = !half_ || converge, x_half = half_;
        src_ << "\n// X = G / (||G||_F * " << fmt("%.17g", normalize->norm_scale) << " + " << fmt("%.17g", normalize->eps) << ")"
             << (g.transpose ? ", transposed: X is " + num(m) + " x " + num(n) : "") << "; a zero gradient gives X = 0"
             << (x_half ? (x_wide ? "; also in bf16 (xh)" : "; in bf16 (xh)") : "") << ".\n";
        std::string params = grad_ptr();
        if (x_wide) params += ", " + ptr("x");
        if (x_half) params += ", unsigned short* __restrict__ xh";
        begin(KernelNames::normalize(gi), origin, params + ", const double* __restrict__ sums");
        if (S > 1) {
            src_ << "    const int slice = blockIdx.y;\n";
            if (x_wide) src_ << "    x += " << product("slice", MN, S * MN) << ";\n";
            if (x_half) src_ << "    xh += " << product("slice", MN, S * MN) << ";\n";
        }
        src_ << "    const double d = modc_ssq_norm(sums" << (S > 1 ? " + " + ssq_at("slice") : "") << ") * "
             << wide(normalize->norm_scale) << " + " << wide(normalize->eps) << ";\n";
        src_ << "    const double inv = d == 0.0 ? 0.0 : 1.0 / d;\n";
        loop("i", E, E * S);
        std::string at = "i";
        if (g.transpose) {
            src_ << "        const " << index_type(E * S) << " row = i / " << g.cols << ", col = i % " << g.cols << ";\n";
            at = "col * " + num(g.rows) + " + row";
        }
        src_ << "        const " << t_ << " v = " << from_wide(load_grad("i" + slice) + " * inv") << ";\n";
        if (x_wide) src_ << "        x[" << at << "] = v;\n";
        if (x_half) src_ << "        xh[" << at << "] = modc_f32_to_bf16(v);\n";
        src_ << "    }\n";
        end();

        for (std::size_t j = 0; j < g.members.size(); ++j) {
            int leaf = g.members[j].leaf;
            std::int64_t first = static_cast<std::int64_t>(j) * S;
            launch(CudaKernelNames::sumsq(gi), {reduce_grid_for(E), static_cast<unsigned>(S), 1},
                   {grad(leaf), bytes(Buffer::Scratch, first * slots_ * 8)}, "||G||_F^2 of " + g.members[j].path,
                   {2.0 * E * S, grad_bytes(E * S), 0});
            std::vector<Operand> args{grad(leaf)};
            if (x_wide) args.push_back(work(Buffer::X, first * MN));
            if (x_half) args.push_back(work(Buffer::Xh, first * MN));
            args.push_back(bytes(Buffer::Scratch, first * slots_ * 8));
            launch(KernelNames::normalize(gi), {grid_for(E), static_cast<unsigned>(S), 1}, args,
                   x_half ? (x_wide ? "X = G / ||G||_F, Xh = bf16(X)" : "Xh = bf16(G / ||G||_F)") : "X = G / ||G||_F",
                   {1.0 * E * S, grad_bytes(E * S), (x_wide ? wide_bytes(E * S) : 0) + (x_half ? half_bytes(E * S) : 0)});
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
        if (g.gram) x = gram_newton_schulz(g, gi, B, m, n, symmetric, origin);
        std::size_t last_step = 0;  // the last fixed step's index: in bf16 it writes X in f32
        for (std::size_t si = 0; si < g.steps.size(); ++si)
            if (g.steps[si].kind == kp::StepKind::NewtonSchulz) last_step = si;
        for (std::size_t si = 0; si < g.steps.size() && !g.gram; ++si) {
            const auto& step = g.steps[si];
            if (step.kind != kp::StepKind::NewtonSchulz && step.kind != kp::StepKind::IterateToConvergence) continue;
            bool iterate = step.kind == kp::StepKind::IterateToConvergence;
            emit_step_kernels(g, gi, si, step, B, m, n, origin, iterate);
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
                    step_ops(gi, si, step, B, m, n, symmetric, iterate, x, Buffer::Y, done_at, si == last_step);
                    x = Buffer::Y;
                } else {
                    step_ops(gi, si, step, B, m, n, symmetric, iterate, x, y, done_at, si == last_step);
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
                           {4.0 * B, wide_bytes(2 * B), wide_bytes(2 * B) + 4 * B});
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
            src_ << "\n// update = " << fmt("%.9g", member.scale) << " * X" << (g.transpose ? "^T" : "") << " for weight #"
                 << member.leaf << " " << member.path << ".\n";
            begin(KernelNames::finish(gi, j), member.origin, update_ptr() + ", " + ptr("x", true));
            if (S > 1) src_ << "    const int slice = blockIdx.y;\n    x += " << product("slice", MN, S * MN) << ";\n";
            loop("i", E, E * S);
            if (g.transpose) {
                src_ << "        const " << index_type(E * S) << " row = i / " << g.cols << ", col = i % " << g.cols << ";\n";
                src_ << "        update[i" << slice << "] = " << narrow(real(member.scale) + " * x[col * " + num(g.rows) + " + row]")
                     << ";\n";
            } else {
                src_ << "        update[i" << slice << "] = " << narrow(real(member.scale) + " * x[i]") << ";\n";
            }
            src_ << "    }\n";
            end();
            launch(KernelNames::finish(gi, j), {grid_for(E), static_cast<unsigned>(S), 1},
                   {update(member.leaf), work(x, static_cast<std::int64_t>(j) * S * MN)}, "update of " + member.path,
                   {1.0 * E * S, wide_bytes(E * S), grad_bytes(E * S)});
        }
    }
    std::size_t iteration_start_ = 0;
    const kp::Group* group_ = nullptr;  // the orthogonalising group being generated

    // b, i, j from a flat index e over B stacked m x m matrices.
    void emit_split(std::int64_t B, std::int64_t MM, std::int64_t m) {
        std::string I = index_type(B * MM);
        if (B > 1) {
            src_ << "        const " << I << " b = e / " << MM << ", r = e % " << MM << ";\n";
            src_ << "        const " << I << " i = r / " << m << ", j = r % " << m << ";\n";
        } else {
            src_ << "        const " << I << " i = e / " << m << ", j = e % " << m << ";\n";
        }
    }

    void emit_step_kernels(const kp::Group& g, std::size_t gi, std::size_t si, const kp::Step& step, std::int64_t B,
                           std::int64_t m, std::int64_t n, const std::string& origin, bool iterate) {
        const auto& k = step.coeffs;
        const std::int64_t MM = m * m, MN = m * n;
        // P = a I + B: Gram Newton-Schulz, and every step in bf16 (X' = P X, one GEMM, where f32
        // adds a X and B X into Y). In bf16, A and A A are read and P written as bf16.
        const bool with_identity = g.gram || half_;
        src_ << "\n// Newton-Schulz step " << si << ", (a, b, c) = (" << fmt("%.17g", k.a) << ", " << fmt("%.17g", k.b)
             << ", " << fmt("%.17g", k.c) << "): " << (with_identity ? "P = a I + b A" : "B = b A") << (k.c != 0 ? " + c A A" : "")
             << ", both triangles, from the upper triangle of A" << (k.c != 0 ? " and A A" : "") << (half_ ? ", in bf16" : "")
             << (iterate ? (half_ ? "; P = I for a matrix that has converged" : "; B = 0 for a matrix that has converged") : "")
             << ".\n";
        const std::string in = half_ ? "const unsigned short* __restrict__ " : "const " + t_ + "* __restrict__ ";
        std::string params = (half_ ? "unsigned short* __restrict__ out" : ptr("out")) + ", " + in + "a";
        if (k.c != 0) params += ", " + in + "aa";
        if (iterate) params += ", const unsigned int* __restrict__ done";
        begin(KernelNames::poly(gi, si), origin, params);
        loop("e", B * MM);
        emit_split(B, MM, m);
        src_ << "        const " << index_type(B * MM) << " u = " << (B > 1 ? "b * " + num(MM) + " + " : "") << "(i <= j ? i * "
             << m << " + j : j * " << m << " + i);\n";
        auto read = [&](const std::string& name) { return half_ ? "modc_bf16_to_f32(" + name + "[u])" : name + "[u]"; };
        std::string value = real(k.b) + " * " + read("a");
        if (k.c != 0) value += " + " + real(k.c) + " * " + read("aa");
        if (with_identity) value += " + (i == j ? " + real(k.a) + " : " + real(0) + ")";
        if (iterate) {
            std::string stay = half_ ? "(i == j ? " + real(1) + " : " + real(0) + ")" : real(0);
            value = std::string(B > 1 ? "done[b]" : "done[0]") + " ? " + stay + " : " + value;
        }
        src_ << "        out[e] = " << to_half(half_, value) << ";\n    }\n";
        end();
        if (with_identity) return;  // no Y = a X

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

    void emit_convergence_kernels(const kp::Group&, std::size_t gi, std::int64_t B, std::int64_t MN,
                                  const std::string& origin, const kp::Step& step) {
        src_ << "\n// acc[2 b] += ||X'_b - X_b||^2, acc[2 b + 1] += ||X_b||^2 (X' the new iterate).\n";
        begin(KernelNames::change(gi), origin,
              ptr("x_new", true) + ", " + ptr("x_old", true) + ", " + ptr("acc") + (half_ ? ", unsigned short* __restrict__ xh" : ""));
        src_ << "    const int b = blockIdx.y;\n";
        src_ << "    x_new += " << product("b", MN, B * MN) << ";\n    x_old += " << product("b", MN, B * MN) << ";\n";
        if (half_) src_ << "    xh += " << product("b", MN, B * MN) << ";  // the next step's GEMM input\n";
        src_ << "    " << t_ << " diff = " << real(0) << ", norm = " << real(0) << ";\n";
        loop("i", MN);
        src_ << "        const " << t_ << " old = x_old[i];\n";
        src_ << "        const " << t_ << " d = x_new[i] - old;\n";
        if (half_) src_ << "        xh[i] = modc_f32_to_bf16(x_new[i]);\n";
        src_ << "        diff += d * d;\n        norm += old * old;\n    }\n";
        src_ << "    if (diff != " << real(0) << ") atomicAdd(&acc[2 * b], diff);\n";
        src_ << "    if (norm != " << real(0) << ") atomicAdd(&acc[2 * b + 1], norm);\n";
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
        begin(CudaKernelNames::converged(gi), origin, ptr("acc") + ", unsigned int* __restrict__ done");
        loop("b", B);
        src_ << "        const " << t_ << " norm = " << sqrt_fn() << "(acc[2 * b + 1]);\n";
        src_ << "        const " << t_ << " ratio = " << sqrt_fn() << "(acc[2 * b]) * (norm == " << real(0) << " ? "
             << real(0) << " : " << real(1) << " / norm);\n";
        src_ << "        if ((double)ratio <= " << fmt("%.17g", tolerance) << ") done[b] = 1u;\n";
        src_ << "        acc[2 * b] = " << real(0) << ";\n        acc[2 * b + 1] = " << real(0) << ";\n    }\n";
        end();
    }

    // The products of the orthogonalising groups, over B stacked matrices: per matrix with the
    // symmetric cuBLAS routines (syrk, symm), or one strided-batched gemm for the whole group.
    // Row-major operands; see the top of this file for how they map onto cuBLAS's column-major.

    // C_b = S_b S_b^T, S_b rows x k. syrk writes C's row-major upper triangle; gemm all of it.
    void self_product(bool symmetric, std::int64_t B, std::int64_t rows, std::int64_t k, Buffer s, Buffer c,
                      const std::string& what) {
        const int R = static_cast<int>(rows), K = static_cast<int>(k);
        Matmul mm;
        mm.lda = K;
        mm.ldc = R;
        if (symmetric) {
            mm.kind = Matmul::Kind::Syrk;
            mm.lower = true;
            mm.trans_a = true;
            mm.n = R;
            mm.k = K;
            for (std::int64_t b = 0; b < B; ++b) {
                mm.a = work(s, b * rows * k);
                mm.c = work(c, b * rows * rows);
                matmul(mm, what);
            }
            return;
        }
        mm.kind = Matmul::Kind::Gemm;
        mm.trans_a = true;
        mm.m = mm.n = R;
        mm.k = K;
        mm.a = mm.b = work(s, 0);
        mm.ldb = K;
        mm.stride_a = mm.stride_b = rows * k;
        mm.c = work(c, 0);
        mm.stride_c = rows * rows;
        mm.batch = static_cast<int>(B);
        matmul(mm, what);
    }

    // C_b = S_b R_b + beta C_b, S_b m x m symmetric (symm reads its row-major upper triangle), R_b m x n.
    void symmetric_left_product(bool symmetric, std::int64_t B, std::int64_t m, std::int64_t n, Buffer s, Buffer r,
                                double beta, Buffer c, const std::string& what) {
        const int M = static_cast<int>(m), N = static_cast<int>(n);
        Matmul mm;
        mm.beta = beta;
        mm.ldc = N;
        if (symmetric) {
            mm.kind = Matmul::Kind::Symm;
            mm.right = true;
            mm.lower = true;
            mm.m = N;
            mm.n = M;
            mm.lda = M;
            mm.ldb = N;
            for (std::int64_t b = 0; b < B; ++b) {
                mm.a = work(s, b * m * m);
                mm.b = work(r, b * m * n);
                mm.c = work(c, b * m * n);
                matmul(mm, what);
            }
            return;
        }
        mm.kind = Matmul::Kind::Gemm;
        mm.m = N;
        mm.n = M;
        mm.k = M;
        mm.a = work(r, 0);
        mm.lda = N;
        mm.stride_a = m * n;
        mm.b = work(s, 0);
        mm.ldb = M;
        mm.stride_b = m * m;
        mm.c = work(c, 0);
        mm.stride_c = m * n;
        mm.batch = static_cast<int>(B);
        matmul(mm, what);
    }

    // In bf16, the last X' = P X (or Q X) of a fixed schedule writes each member's update itself,
    // scaled (alpha) and in the storage type, transposed by its operands' layout where the group
    // is (see the top of this file): no f32 X and no finish kernel. Not for Conv2D kernels,
    // whose slices interleave in the update (no leading dimension describes one).
    bool into_updates(const kp::Group& g) const {
        if (!half_ || g.slices != 1) return false;
        for (const auto& s : g.steps)
            if (s.kind == kp::StepKind::IterateToConvergence) return false;
        return true;
    }
    // update_j = scale_j * (P_j X_j), P m x m symmetric (bf16), X m x n (bf16); the update is
    // P X row-major, or (rows > cols) its transpose: column-major, P X itself (ldc = m).
    void product_into_updates(const kp::Group& g, std::int64_t m, std::int64_t n, Buffer p, Buffer x) {
        const int M = static_cast<int>(m), N = static_cast<int>(n);
        for (std::size_t j = 0; j < g.members.size(); ++j) {
            const auto b = static_cast<std::int64_t>(j);
            Matmul mm;
            mm.kind = Matmul::Kind::Gemm;
            mm.alpha = g.members[j].scale;
            mm.c = update(g.members[j].leaf);
            if (g.transpose) {  // C (m x n, col-major) = P (m x m) * op(X), X's bytes are X^T col-major (ld n)
                mm.trans_b = true;
                mm.m = M;
                mm.n = N;
                mm.k = M;
                mm.a = work(p, b * m * m);
                mm.lda = M;
                mm.b = work(x, b * m * n);
                mm.ldb = N;
                mm.ldc = M;
            } else {  // as symmetric_left_product: C^T (n x m) = X^T P
                mm.m = N;
                mm.n = M;
                mm.k = M;
                mm.a = work(x, b * m * n);
                mm.lda = N;
                mm.b = work(p, b * m * m);
                mm.ldb = M;
                mm.ldc = N;
            }
            matmul(mm, "update of " + g.members[j].path + " = scale P X" + (g.transpose ? ", transposed" : ""));
        }
    }

    // Copies A's upper triangle into its lower one (in bf16, of Ah).
    void symmetrize(std::size_t gi, std::int64_t B, std::int64_t MM, Buffer a, const std::string& what) {
        launch(KernelNames::symmetrize(gi), {grid_for(B * MM), 1, 1}, {work(a, 0)}, what,
               {0, bytes_of(a, B * MM / 2), bytes_of(a, B * MM / 2)});
    }
    Work poly_work(const kp::Coeffs& k, std::int64_t count, Buffer out) const {
        return {(k.c != 0 ? 5.0 : 3.0) * count, bytes_of(h(Buffer::A), count) * (k.c != 0 ? 2 : 1), bytes_of(out, count)};
    }

    // One direct Newton-Schulz step. f32 (and f64): A = X X^T, [A A], B, Y = a X, Y += B X.
    // bf16: A = X X^T, [A A], P = a I + B, X' = P X, every GEMM reading and writing bf16 but the
    // one that makes the last X (the cubic schedule's every X), which f32 kernels read.
    void step_ops(std::size_t gi, std::size_t si, const kp::Step& step, std::int64_t B, std::int64_t m, std::int64_t n,
                  bool symmetric, bool iterate, Buffer x, Buffer y, std::int64_t done_at, bool last) {
        const std::int64_t MM = m * m, MN = m * n;
        const auto& k = step.coeffs;
        const Buffer xs = half_ ? xh_ : x;
        self_product(symmetric, B, m, n, xs, h(Buffer::A), "A = X X^T");
        if (k.c != 0) {
            if (symmetric)
                launch(KernelNames::symmetrize(gi), {grid_for(B * MM), 1, 1}, {work(Buffer::A, 0)}, "fill A's lower triangle",
                       {0, wide_bytes(B * MM / 2), wide_bytes(B * MM / 2)});
            self_product(symmetric, B, m, m, h(Buffer::A), h(Buffer::AA), "AA = A A");
        }
        std::vector<Operand> args{work(h(Buffer::B), 0), work(h(Buffer::A), 0)};
        if (k.c != 0) args.push_back(work(h(Buffer::AA), 0));
        if (iterate) args.push_back(bytes(Buffer::Scratch, done_at));
        launch(KernelNames::poly(gi, si), {grid_for(B * MM), 1, 1}, args, half_ ? "P = a I + b A + c A A" : "B = b A + c A A",
               poly_work(k, B * MM, h(Buffer::B)));
        if (half_) {
            if (last && !iterate && into_updates(*group_)) return product_into_updates(*group_, m, n, Buffer::Bh, xh_);
            const bool wide_out = iterate || last;
            symmetric_left_product(false, B, m, n, Buffer::Bh, xh_, 0, wide_out ? y : yh_, "X' = P X");
            if (!wide_out) std::swap(xh_, yh_);
            return;
        }
        args = {work(y, 0), work(x, 0)};
        if (iterate) args.push_back(bytes(Buffer::Scratch, done_at));
        launch(KernelNames::axpy(gi, si), {grid_for(B * MN), 1, 1}, args, "Y = a X", {1.0 * B * MN, wide_bytes(B * MN), wide_bytes(B * MN)});
        symmetric_left_product(symmetric, B, m, n, Buffer::B, x, 1, y, "Y += B X");
    }

    // Gram Newton-Schulz (kernel_plan.hpp, Group::gram), as the CPU backend runs it: the steps on
    // m x m matrices, then X' = Q X (once, or twice with a restart). Q and T are two more m x m
    // work buffers. Returns the buffer holding the result. In bf16 the same ops on the bf16
    // buffers (h()), every GEMM writing bf16 but the last X' = Q X, which finish reads in f32.
    Buffer gram_newton_schulz(const kp::Group& g, std::size_t gi, std::int64_t B, std::int64_t m, std::int64_t n,
                              bool symmetric, const std::string& origin) {
        const std::int64_t MM = m * m;
        need(h(Buffer::Q), bytes_of(h(Buffer::Q), B * MM));
        need(h(Buffer::T), bytes_of(h(Buffer::T), B * MM));
        const auto steps = kp::gram_steps(g);
        for (const auto& s : steps) emit_step_kernels(g, gi, s.step, g.steps[s.step], B, m, n, origin, false);

        Buffer x = h(Buffer::X), y = h(Buffer::Y), a = h(Buffer::A), q = h(Buffer::Q), spare = h(Buffer::T);
        for (std::size_t i = 0; i < steps.size(); ++i) {
            const auto& [step, first, last] = steps[i];
            if (first) {
                self_product(symmetric, B, m, n, x, a, "A = G = X X^T");
                if (symmetric) symmetrize(gi, B, MM, a, "fill A's lower triangle");
            }
            self_product(symmetric, B, m, m, a, h(Buffer::AA), "AA = A A");
            // The first P of a run is Q itself; later ones go to B and multiply Q.
            const Buffer p = first ? q : h(Buffer::B);
            launch(KernelNames::poly(gi, step), {grid_for(B * MM), 1, 1}, {work(p, 0), work(a, 0), work(h(Buffer::AA), 0)},
                   "P = a I + b A + c A A", poly_work(g.steps[step].coeffs, B * MM, p));
            if (!first) {
                symmetric_left_product(symmetric, B, m, m, p, q, 0, spare, "Q = P Q");
                std::swap(q, spare);
            }
            if (!last) {
                self_product(symmetric, B, m, m, p, h(Buffer::AA), "AA = P P");
                symmetric_left_product(symmetric, B, m, m, h(Buffer::AA), a, 0, spare, "A = P P A");
                std::swap(a, spare);
                // Symmetric only in exact arithmetic: the next A A (syrk, or a transposed gemm)
                // computes A A^T, so an asymmetry would grow every step (as the CPU backend, keep
                // the upper triangle).
                symmetrize(gi, B, MM, a, "make A symmetric");
            } else {
                // In bf16 the final X goes to Y in f32, or into the updates; one before a restart
                // stays bf16.
                if (i + 1 == steps.size() && into_updates(g)) {
                    product_into_updates(g, m, n, q, x);
                    break;
                }
                const Buffer out = half_ && i + 1 == steps.size() ? Buffer::Y : y;
                symmetric_left_product(symmetric, B, m, n, q, x, 0, out, "X' = Q X");
                if (out == y) std::swap(x, y);
                else x = out;
            }
        }
        return x;
    }

    // ---- closed forms ----

    void closed(const kp::Group& g, std::size_t gi) {
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
            case MapKind::Normalize: per_member = 1; break;
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
        if (g.map == MapKind::Normalize) {
            src_ << "\n// sums[0] += the squares of the gradient.\n";
            begin(CudaKernelNames::sumsq(gi), origin, grad_ptr() + ", double* __restrict__ sums");
            src_ << "    double acc[" << slots_ << "] = {};\n";
            loop("i", E);
            src_ << "        modc_ssq_add(acc, " << load_grad("i") << ");\n    }\n";
            src_ << "    modc_ssq_flush(sums, acc);\n";
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
            if (g.map == MapKind::NormalizeRows || g.map == MapKind::Normalize)
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
                    src_ << "    const double norm = modc_ssq_norm(sums);\n";
                    src_ << "    const double f = " << wide(member.scale) << " * (norm == 0.0 ? 0.0 : 1.0 / norm);\n";
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
            // NormalizeColumns reads each column twice (its norm, then the update).
            launch(KernelNames::closed(gi, j), {grid_for(count), 1, 1}, args, "update of " + member.path,
                   {(g.map == MapKind::NormalizeColumns ? 3.0 : 1.0) * E,
                    grad_bytes(E) * (g.map == MapKind::NormalizeColumns ? 2 : 1), grad_bytes(E)});
        }
    }
};

}  // namespace

Program codegen_cuda(const kp::KernelPlan& plan, const CudaOptions& options) {
    MODC_ASSERT(options.block > 0 && options.block <= 1024 && options.max_grid > 0 && options.max_reduce_grid > 0,
                "bad CUDA launch options");
    if (options.storage == Storage::BF16 && options.type != ElementType::F32)
        throw Unsupported("bf16 gradients and updates are computed in f32, not f64");
    if (plan.precision != kp::Precision::F32 && options.type != ElementType::F32)
        throw Unsupported(std::string("precision ") + kp::to_string(plan.precision) + " is for f32 compute; f64 runs its GEMMs in f64");
    return Generator(plan, options).run();
}

std::string print_cuda(const Program& program) { return program.source; }

}  // namespace modc::cuda
