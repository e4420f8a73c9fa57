// The kernel plan: how a dual plan is computed on a machine (made by compiler/backend/schedule). Leaves of the same matrix shape
// and map are batched into groups; each group runs an ordered list of steps whose shapes and
// constants are all known here. Both backends read this one plan, so the CPU run is the
// reference for the GPU code. Floating point starts here.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "program/map_kind.hpp"

namespace modc::kp {

struct Coeffs {
    double a = 0, b = 0, c = 0;
};

enum class StepKind {
    // Orthogonalisation of each m x n matrix (m <= n after an optional transpose):
    Normalize,      // X = G / (||G||_F * norm_scale + eps), transposed when rows > cols
    NewtonSchulz,   // A = X X^T; B = b A + c A A; X = a X + B X        (one step)
    IterateToConvergence,  // the same step repeated until X stops changing (cubic)
    SvdPolar,       // X = U V^T through LAPACK (the reference)
    // Closed forms, each on one leaf's gradient:
    NormalizeColumns,  // each column / ||column||_2
    NormalizeRows,     // each row / ||row||_2
    NormalizeWhole,    // G / ||G||_2
    Sign,              // sign(G), sign(0) = 0
    MaxCoordinate,     // sign(g_i) at the largest |g_i|, 0 elsewhere
    // Last step of every group: update = scale * (result, transposed back if needed)
    Finish,
};
const char* to_string(StepKind kind);

struct Step {
    StepKind kind;
    Coeffs coeffs;           // NewtonSchulz / IterateToConvergence
    double norm_scale = 1;   // Normalize
    double eps = 0;          // Normalize
    double tolerance = 0;    // IterateToConvergence: stop when ||X' - X||_F <= tolerance
    int max_steps = 0;       // IterateToConvergence
};

// Where one weight's gradient and update live, and how the group sees it.
struct Member {
    int leaf = 0;        // index in the dual plan
    std::string path;
    double scale = 0;    // t times the map's own factor
    std::string origin;  // "file.mod:12", where the atom was written (for #line in generated code)
};

struct Group {
    MapKind map;
    std::string schedule;             // of an orthogonalising group; empty for closed forms
    std::vector<std::int64_t> shape;  // of each leaf's tensor
    std::int64_t rows = 0, cols = 0;  // each matrix the steps see (slices for Conv2D; 1 x d for vectors)
    std::int64_t slices = 1;          // matrices per leaf: k*k for Conv2D kernels, else 1
    bool transpose = false;           // orthogonalise X^T (rows > cols): iterate on the smaller Gram matrix
    // Gram Newton-Schulz: run the steps on m x m matrices only. Every iterate is X_k = Q_k X_0
    // with Q_k a polynomial in G = X_0 X_0^T, so with A_k = X_k X_k^T and P_k = a I + b A_k + c A_k^2:
    //   Q_{k+1} = P_k Q_k,  A_{k+1} = P_k^2 A_k  (all commute),  and at the end X = Q_K X_0.
    // Chosen by lower() where it saves at least a quarter of the flops (n >= 3m for 5 steps),
    // never with the CPU's bf16 matmul inputs (Precision::BF16): rounding G to bf16 loses its
    // small eigenvalues, and the iteration diverges on ill-conditioned gradients (schedule.cpp;
    // the CPU's bf16 has gram_lead below instead).
    // Its rounding is about 100x the direct iteration's (2e-3 at worst in f32, see
    // tests/unit/test_cpu.cpp): fine where the schedule's own error dwarfs it (polar-express,
    // muon), and restarted once (below) where it does not.
    bool gram = false;
    // Gram groups of accurate schedules (scalar_error < 0.05: you) form X = Q X_0 after this many
    // steps and start again from it, which brings the rounding down to within about ten times
    // the direct iteration's (1.3e-4 at worst in f32), for 3 m^2 n more flops (0: no restart).
    int gram_restart = 0;
    // Restart after the first step and then every gram_restart steps, not once: for the tf32
    // and bf16 GEMMs of the CUDA backend, whose rounding longer Gram runs amplify past the direct
    // iteration's. The first step alone: in a Gram run its A update, P^2 A with P up to 8 (the
    // polar-express's first step), carries errors of 0.1 into A's small eigenvalues, which
    // diverged on a 32 x 128 gradient with singular values 1/i^2 (1e7); after it, runs of two
    // steps stay at the direct iteration's error (docs/cuda.md, Precision).
    bool gram_restart_every = false;
    // The CPU's bf16 matmul inputs (Precision::BF16, where `gram` is never chosen): the first
    // gram_lead Newton-Schulz steps as one Gram run, the rest directly (0: all directly). In the
    // run Q_k = alpha_k I + Q'_k, alpha_k the product of the run's a so far, and only Q' is
    // rounded: with Z = b A + c A^2,
    //   Q'_{k+1} = a Q'_k + alpha_k Z_k + Q'_k Z_k,  A_{k+1} = a^2 A_k + 2a A_k Z_k + (A_k Z_k) Z_k,
    // and X = alpha X_0 + Q' X_0 at the end, so, as in the direct step X = a X + B X, the large
    // a-term never passes through bf16; the products of commuting matrices are computed as
    // upper triangles. Chosen by lower() only for the first steps of a schedule while alpha
    // stays small (muon: 3 steps, alpha = 41): bf16's rounding errors are amplified by up to
    // alpha, then the direct steps that follow damp them. It keeps the bf16 error at GPT-2
    // sizes below PyTorch's bf16 iteration (schedule.cpp, docs/performance.md).
    int gram_lead = 0;
    std::vector<Member> members;
    std::vector<Step> steps;

    std::int64_t elements() const;          // per leaf
    // Runs a Gram form (whole or a lead), which needs two more m x m buffers (Q and a spare).
    bool runs_gram() const { return gram || gram_lead > 0; }
    std::int64_t small() const { return transpose ? cols : rows; }  // m: the Gram side
    std::int64_t large() const { return transpose ? rows : cols; }  // n
};

// The precision of the matmuls' inputs (products always accumulate in at least f32): F32 (or
// the element type, f64), TF32 (10-bit mantissa, tensor cores) or BF16 (8 bits; on the CPU each
// product's inputs are rounded to nearest even, the iterate stays in f32). Elementwise work and
// reductions stay in the element type. Which backend supports which: library/modc.cpp.
enum class Precision { F32, TF32, BF16 };
const char* to_string(Precision precision);

struct KernelPlan {
    std::string network;
    std::string schedule;
    Precision precision = Precision::F32;
    std::vector<Group> groups;
    std::size_t leaf_count = 0;
};

// Flops of `steps` Newton-Schulz steps on one m x n matrix (m <= n), using the symmetry of
// X X^T and of b A + c A A: directly 3 m^2 n + m^3 per step (math.md section 3); as Gram
// Newton-Schulz 3 m^2 n (G and the final Q X_0) + (6 steps - 5) m^3 per run of steps, one run
// or two with a restart.
double newton_schulz_flops(double m, double n, int steps, bool gram, int restart = 0, bool restart_every = false);
// The same with the first `lead` steps as one Gram run in Group::gram_lead's form: 3 m^2 n
// (G and X = alpha X + Q' X) + (4 lead - 3) m^3, the other steps directly.
double gram_lead_flops(double m, double n, int steps, int lead);
// A group's, as it runs: Gram, Gram lead or direct.
double newton_schulz_flops(const Group& group, int steps);
// alpha of a Gram lead (Group::gram_lead): the product of a over its steps (1 without a lead).
double gram_lead_alpha(const Group& group);

// The steps of a Gram group as both backends run them: `step` indexes group.steps; `first`
// starts a run (A = G = X X^T, and Q = P), `last` ends one (X = Q X instead of A = P^2 A).
struct GramStep {
    std::size_t step = 0;
    bool first = false, last = false;
};
std::vector<GramStep> gram_steps(const Group& group);

// Newton-Schulz steps one matrix of the group runs: its fixed steps, or 10 for the cubic
// schedule (which stops when it converges); 0 for svd and the closed forms.
int newton_schulz_steps(const Group& group);

// The modelled work of one matrix of the group (one item of the CPU dualizer, one slice of a
// Conv2D kernel): its Newton-Schulz flops, an SVD weighed as 10 steps; for a closed-form map,
// 3 flops per element of the whole leaf. And of one member (all its slices).
double matrix_cost(const Group& group);
double member_cost(const Group& group);

// Floating-point operations of one run (the cubic schedule counted as 10 steps).
double flops(const KernelPlan& plan);

std::string print(const KernelPlan& plan);

}  // namespace modc::kp
