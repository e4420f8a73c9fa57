// The step plan: an `optimizer` block as the program that runs it, once per training step and
// for every weight of the network (made by compiler/analysis/lower_step.cpp from a type-checked
// block; run by the runtime with the dualizer of the network's kernel plan).
//
// The statements run in order. Every value but the hyperparameters is a tensor shaped like
// the weight, and every operation is elementwise except dualize(x), which applies the whole
// network's duality map (all weights at once). So the step is cut before each statement that
// calls dualize: a segment is a run of statements, fused into one elementwise pass per weight,
// that ends by computing the arguments of the next statement's dualize calls into the dualizer's
// input buffers; the dualizer then runs once per call, and the next segment reads its outputs.
//
//   optimizer nesterov(lr = 0.02, beta = 0.95) {      segment 0: m = beta m + grad;
//       m = beta * m + grad                                      in0 = grad + beta m
//       W -= lr * dualize(grad + beta * m)            dualize:   out0 = dualize(in0)
//   }                                                 segment 1: W = W - lr out0
//
// Statistics of one weight (sum, mean, and by row or column) are cut the same way: their
// arguments are summed, in double, at the end of the segment before the statement that uses
// them, and the next segments read the sums (docs/optimizers.md, "Statistics").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace modc::step {

enum class NodeKind : std::uint8_t {
    Number,  // value
    Hyper,   // hyperparameter `index` (a runtime scalar)
    Weight,  // W
    Grad,    // grad
    Var,     // variable `index` (its value so far in this step, or the previous step's)
    Dual,    // output `index` of the dualizer (dualize call `index`)
    Neg,     // -a
    Add,     // a + b
    Sub,     // a - b
    Mul,     // a * b
    Div,     // a / b
    Pow,     // a ^ b (numbers only)
    Step,    // the step count, 1 on the first step (a runtime scalar)
    Const,   // the weight's constant `index` (WeightConst), a runtime scalar per weight
    Stat,    // whole-weight statistic `index`: its sum (or mean), a runtime scalar per weight
    RowStat, // row statistic `index` at the element's row (the weight as rows x cols, row-major)
    ColStat, // column statistic `index` at the element's column
    Sqrt,    // sqrt(a)
    Abs,     // |a|
    Sign,    // -1, 0 or 1
    Max,     // max(a, b)
    Min,     // min(a, b)
    Lt,      // 1 where a < b, else 0 (and so on below)
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Where,   // b where a != 0, else c
};
const char* to_string(NodeKind kind);

// The numbers of one weight that a block reads by name (`fan_in`, ...): its shape as a matrix
// (rows = fan_out = shape[0], cols = fan_in = the product of the rest; 1 for a vector), and its
// target and scale from the derivation (modc explain).
enum class WeightConst : std::uint8_t { FanIn, FanOut, Target, Scale };
inline constexpr int kWeightConsts = 4;
const char* to_string(WeightConst c);

// An expression node; a, b and c index StepPlan::nodes (children come before their parents).
struct Node {
    NodeKind kind = NodeKind::Number;
    double value = 0;  // Number
    int index = -1;    // Hyper, Var, Dual, Const (a WeightConst), Stat / RowStat / ColStat
    int a = -1, b = -1, c = -1;
    bool scalar = false;  // the same for every element of a weight: computed once per pass, in double
};

// A statistic of one weight: the sum (or mean) of a tensor over the whole weight, or along
// each row or column. Its value is the sum, in double; a mean divides where it is read.
enum class Axis : std::uint8_t { All, Row, Col };
struct Stat {
    Axis axis = Axis::All;
    bool mean = false;
};
std::string stat_name(const Stat& s);  // "sum", "mean", "row_mean", "col_sum", ...

struct Hyper {
    std::string name;
    double value = 0;       // the block's default
    bool has_default = false;
};

// A name the block assigns. State variables are read before they are assigned in a step (or
// by `+=` / `-=`), so they carry the previous step's value: the caller sees them, zero before
// the first step. The others are temporaries of one step.
struct Var {
    std::string name;
    bool state = false;
};

inline constexpr int kWeightTarget = -1;

// `target = nodes[value]` (`-=` and `+=` are already written out as Sub and Add).
struct Assign {
    int target = kWeightTarget;  // a variable index, or kWeightTarget for W
    int value = -1;
};

// dualizer input `dual` = nodes[value] (computed at the end of the segment).
struct DualArg {
    int dual = 0;
    int value = -1;
};

// statistic `stat` sums nodes[value] over the weight (at the end of the segment, after the
// dualizer inputs).
struct StatArg {
    int stat = 0;
    int value = -1;
};

struct Segment {
    std::vector<Assign> assigns;
    std::vector<DualArg> duals;  // then the dualizer runs once per entry, in order
    std::vector<StatArg> stats;  // summed in the same pass
};

struct StepPlan {
    std::string optimizer;
    std::vector<Hyper> hypers;
    std::vector<Var> vars;
    std::vector<Node> nodes;
    std::vector<Segment> segments;
    std::vector<Stat> stats;
    int dual_count = 0;

    // The tensors of one weight that a segment's pass reads and writes, numbered in this order:
    // W, grad, each variable, each dualizer input, each dualizer output.
    int buffer_count() const { return 2 + static_cast<int>(vars.size()) + 2 * dual_count + static_cast<int>(axis_stats().size()); }
    static int weight_buffer() { return 0; }
    static int grad_buffer() { return 1; }
    int var_buffer(int v) const { return 2 + v; }
    int dual_in_buffer(int d) const { return 2 + static_cast<int>(vars.size()) + d; }
    int dual_out_buffer(int d) const { return 2 + static_cast<int>(vars.size()) + dual_count + d; }

    // The rows and columns statistics' sums, one double per row or column of the weight, follow
    // the tensors in the buffer list (as double*).
    std::vector<int> axis_stats() const;  // indices of the Row and Col statistics, in order
    int stat_buffer(int s) const;         // buffer of a Row or Col statistic

    // The runtime scalars of one weight's pass, in double: the hyperparameters, the step count,
    // the weight's constants (WeightConst order), then the whole-weight statistics' sums (which
    // the pass that computes them writes).
    int scalar_count() const { return step_scalar() + 1 + kWeightConsts + static_cast<int>(stats.size()); }
    int step_scalar() const { return static_cast<int>(hypers.size()); }
    int const_scalar(int c) const { return step_scalar() + 1 + c; }
    int stat_scalar(int s) const { return step_scalar() + 1 + kWeightConsts + s; }
    bool has_axis_stats() const { return !axis_stats().empty(); }

    int find_hyper(const std::string& name) const;  // -1 if none
    std::vector<int> state_vars() const;            // indices of the state variables, in order
};

// The plan as text (`modc emit --emit step-plan`): hyperparameters, variables, and per segment
// its assignments and dualizer inputs in infix form.
std::string print(const StepPlan& plan);
std::string print_node(const StepPlan& plan, int node);

}  // namespace modc::step
