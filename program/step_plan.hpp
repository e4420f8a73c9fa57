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
};
const char* to_string(NodeKind kind);

// An expression node; a and b index StepPlan::nodes (children come before their parents).
struct Node {
    NodeKind kind = NodeKind::Number;
    double value = 0;  // Number
    int index = -1;    // Hyper, Var, Dual
    int a = -1, b = -1;
    bool scalar = false;  // depends on numbers and hyperparameters only
};

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

struct Segment {
    std::vector<Assign> assigns;
    std::vector<DualArg> duals;  // then the dualizer runs once per entry, in order
};

struct StepPlan {
    std::string optimizer;
    std::vector<Hyper> hypers;
    std::vector<Var> vars;
    std::vector<Node> nodes;
    std::vector<Segment> segments;
    int dual_count = 0;

    // The tensors of one weight that a segment's pass reads and writes, numbered in this order:
    // W, grad, each variable, each dualizer input, each dualizer output.
    int buffer_count() const { return 2 + static_cast<int>(vars.size()) + 2 * dual_count; }
    static int weight_buffer() { return 0; }
    static int grad_buffer() { return 1; }
    int var_buffer(int v) const { return 2 + v; }
    int dual_in_buffer(int d) const { return 2 + static_cast<int>(vars.size()) + d; }
    int dual_out_buffer(int d) const { return 2 + static_cast<int>(vars.size()) + dual_count + d; }

    int find_hyper(const std::string& name) const;  // -1 if none
    std::vector<int> state_vars() const;            // indices of the state variables, in order
};

// The plan as text (`modc emit --emit step-plan`): hyperparameters, variables, and per segment
// its assignments and dualizer inputs in infix form.
std::string print(const StepPlan& plan);
std::string print_node(const StepPlan& plan, int node);

}  // namespace modc::step
