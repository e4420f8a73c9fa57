// compiler/backend/schedule: the orthogonalisation schedules (math.md section 3) and lower(),
// which turns a dual plan into a kernel plan (program/kernel_plan.hpp), batching by shape.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compiler/analysis/dual_plan.hpp"
#include "program/kernel_plan.hpp"

namespace modc::kp {

struct Schedule {
    std::string name;
    std::vector<Coeffs> steps;  // empty for svd and cubic
    double norm_scale = 1;
    double eps = 1e-7;
    bool exact = false;        // svd
    bool converge = false;     // cubic: iterate steps[0] to convergence
};

// The scalar error of a fixed schedule: max |p(s) - 1| over the singular values s in
// [0.002, 1] of the normalised matrix, the range the fixed schedules are made for (sampled;
// 0 for svd and cubic, which converge).
double scalar_error(const Schedule& schedule);

// Known schedules: muon, you, polar-express (the default), cubic, svd.
const std::vector<Schedule>& schedules();
const Schedule* find_schedule(const std::string& name);
inline constexpr const char* kDefaultSchedule = "polar-express";

struct LowerOptions {
    // Allow Gram Newton-Schulz for wide matrices (both backends run it); see Group::gram.
    bool gram = true;
    // The matmuls' input precision, recorded in the plan for the backends (KernelPlan::precision).
    Precision precision = Precision::F32;
    // tf32 and bf16 GEMMs that run Gram Newton-Schulz restarted after step 1 and then every 2
    // steps (the CUDA backend: Group::gram_restart_every). Without it (the CPU), bf16 runs no whole Gram
    // groups, only a Gram lead over the first steps (Group::gram_lead).
    bool gram_restart_every = false;
};

// Groups leaves by (map, shape, schedule) and lays out the steps of each group. `per_leaf`
// overrides the schedule for the weights it names (by path).
KernelPlan lower(const DualPlan& plan, const Schedule& schedule,
                 const std::map<std::string, const Schedule*>& per_leaf = {}, const LowerOptions& options = {});

}  // namespace modc::kp
