// The kernel plan: how a dual plan is computed on a machine. Leaves of the same matrix shape
// and map are batched into groups; each group runs an ordered list of steps whose shapes and
// constants are all known here. Both backends read this one plan, so the CPU run is the
// reference for the GPU code. Floating point starts here.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dual_plan.hpp"

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
    std::vector<Member> members;
    std::vector<Step> steps;

    std::int64_t elements() const;          // per leaf
    std::int64_t small() const { return transpose ? cols : rows; }  // m: the Gram side
    std::int64_t large() const { return transpose ? rows : cols; }  // n
};

struct Schedule {
    std::string name;
    std::vector<Coeffs> steps;  // empty for svd and cubic
    double norm_scale = 1;
    double eps = 1e-7;
    bool exact = false;        // svd
    bool converge = false;     // cubic: iterate steps[0] to convergence
};

// Known schedules: muon, you, polar-express (the default), cubic, svd.
const std::vector<Schedule>& schedules();
const Schedule* find_schedule(const std::string& name);
inline constexpr const char* kDefaultSchedule = "polar-express";

struct KernelPlan {
    std::string network;
    std::string schedule;
    std::vector<Group> groups;
    std::size_t leaf_count = 0;
};

// Groups leaves by (map, shape, schedule) and lays out the steps of each group. `per_leaf`
// overrides the schedule for the weights it names (by path).
KernelPlan lower(const DualPlan& plan, const Schedule& schedule,
                 const std::map<std::string, const Schedule*>& per_leaf = {});

// Floating-point operations of one run, counting orthogonalisation as 3 m^2 n + m^3 per
// Newton-Schulz step (the symmetric form; see math.md section 3).
double flops(const KernelPlan& plan);

std::string print(const KernelPlan& plan);

}  // namespace modc::kp
