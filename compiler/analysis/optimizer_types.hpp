// compiler/analysis/optimizer_types: the types of values in an `optimizer` block and the
// functions a block may call, with the rule that types each one. The type check
// (typecheck.cpp) and the lowering (lower_step.cpp) both read the function table here, so a
// function is declared once. The geometry behind the rules: docs/optimizers.md, "Types".
//
// A value is a number (the same for every entry), a number per entry (a mask, a ratio), a
// direction in the primal space (weights, updates) or the dual space (gradients), or a
// magnitude of one of those spaces: |x| has degree 2, x * x and averages of squares degree 4
// (in halves, so that sqrt halves it).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace modc::opt_types {

enum class Kind : unsigned char { Unknown, Error, Number, Field, Direction, Magnitude };
enum class Space : unsigned char { None, Primal, Dual };

struct Type {
    Kind kind = Kind::Unknown;  // Unknown: a state variable whose type is not inferred yet
    Space space = Space::None;  // Direction and Magnitude
    int degree = 0;             // Magnitude: |x| ^ (degree / 2)

    static Type number() { return {Kind::Number, Space::None, 0}; }
    static Type field() { return {Kind::Field, Space::None, 0}; }
    static Type dir(Space s) { return {Kind::Direction, s, 0}; }
    static Type mag(Space s, int degree) { return {Kind::Magnitude, s, degree}; }
    static Type error() { return {Kind::Error, Space::None, 0}; }

    bool known() const { return kind != Kind::Unknown && kind != Kind::Error; }
    bool is_dir(Space s) const { return kind == Kind::Direction && space == s; }
    bool is_tensor() const { return kind == Kind::Direction || kind == Kind::Magnitude || kind == Kind::Field; }
    bool scalar_like() const { return kind == Kind::Number || kind == Kind::Field; }
    bool operator==(const Type& o) const { return kind == o.kind && space == o.space && degree == o.degree; }
    bool operator!=(const Type& o) const { return !(*this == o); }
};

// "a number", "a primal value (in weight space)", "a second moment of dual values (gradients)", ...
std::string name_of(Type t);

// A type, or the error message that refuses the operation (and the argument it is about).
struct Rule {
    Type type;
    std::string error;
    std::size_t argument = static_cast<std::size_t>(-1);  // -1: the call as a whole
};

// a OP b for the binary operators (+ - * / and the comparisons). Unknown operands give what
// the other operand tells, or Unknown.
Rule combine_types(Type a, Type b, const std::string& op);
bool is_comparison(const std::string& op);

// The functions of an optimizer block.
enum class Fn : unsigned char {
    Dualize, Sqrt, Abs, Sign, Max, Min, Clamp, Where,
    Sum, Mean, Rms, Norm, Dot, RowMean, ColMean,
};
struct Function {
    const char* name;
    Fn fn;
    std::size_t arity;
    bool deferred;          // needs its argument over the whole weight: computed in an earlier pass
    const char* signature;  // for messages
    Rule (*rule)(const std::vector<Type>& args);
};
extern const std::vector<Function> kFunctions;
const Function* find_function(const std::string& name);  // nullptr if none
std::string function_list();                             // "dualize, sqrt, abs, ..."

// The names every optimizer sees: the weights it updates, their gradient, and the numbers modc
// gives each step (the step count, 1 on the first step) and each weight (step_plan.hpp: WeightConst).
inline const char* const kWeights = "W";
inline const char* const kGradient = "grad";
inline const char* const kWeightNumbers[] = {"step", "fan_in", "fan_out", "target", "scale"};
bool weight_number(const std::string& name);

}  // namespace modc::opt_types
