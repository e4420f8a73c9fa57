// The abstract syntax tree: what the user wrote, with positions; nothing evaluated.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/source.hpp"

namespace modc::ast {

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

// A binary operator occurrence, kept with its position for diagnostics.
struct Op {
    std::string symbol;  // "+", "-", "*", "/", "@", "^"
    Loc loc;
};

struct Arg {
    std::optional<std::string> keyword;  // `mass = 3` has keyword "mass"
    Loc keyword_loc;
    ExprPtr value;
};

enum class ExprKind {
    Number,  // text holds the literal
    Name,    // a bare name: `ReLU`, `d`
    Call,    // name(args)
    Tuple,   // (a, b, ...): at least two items, or one with a trailing comma
    Negate,  // -operand[0]
    Chain,   // operands[0] ops[0] operands[1] ...: all ops of one precedence level
    Power,   // operands[0] ^ operands[1] (right-associative, built from a chain)
    Named,   // operands[0] as text
};

// Chains keep same-precedence operators n-ary (`a @ b @ c` is one node), so that long
// inputs never make deep trees; parentheses, prefix minus signs and `^` do nest, and the
// parser bounds the depth of every tree (kMaxNesting, kMaxExprDepth in grammar.hpp).
struct Expr {
    ExprKind kind;
    Loc loc;
    int depth = 1;                  // levels of nodes from this one down to its deepest leaf
    std::string text;               // Number: literal; Name/Call: the name; Named: the label
    Loc name_loc;                   // Call/Named: position of the name
    std::vector<ExprPtr> operands;  // Tuple items, Negate/Power/Chain/Named operands
    std::vector<Op> ops;            // Chain: operators between operands; Power: the '^'
    std::vector<Arg> args;          // Call
};

struct Param {
    std::string name;
    Loc loc;
    std::optional<std::string> type;  // `d: dim` in atom and bond declarations
    Loc type_loc;
    ExprPtr default_value;            // may be null
};

// `def NAME(params) = EXPR` or `network NAME(params) = EXPR`.
struct Definition {
    bool is_network = false;
    std::string name;
    Loc name_loc;
    Loc loc;
    std::vector<Param> params;
    ExprPtr body;
};

struct Field {
    std::string name;
    Loc loc;
    ExprPtr value;
};

// `atom NAME(params) : IN -> OUT { fields }` or `bond ...`.
struct Primitive {
    bool is_atom = true;
    std::string name;
    Loc name_loc;
    Loc loc;
    std::vector<Param> params;
    ExprPtr input;   // feature-size pattern of the input
    ExprPtr output;  // and of the output
    std::vector<Field> fields;
};

struct Statement {
    std::string target;
    Loc target_loc;
    Op assign;  // "=", "-=", "+="
    ExprPtr value;
    Loc loc;
};

// A rule's selector: an atom's name (`Linear`) or a weight path pattern (`head`,
// `blocks[*].attention.*`: `*` matches any run of characters).
struct Selector {
    std::string text;
    Loc loc;
};

// `for SELECTOR, ... { statements }`: the statements the weights it selects run.
struct Rule {
    std::vector<Selector> selectors;
    std::vector<Statement> statements;
    Loc loc;
};

// `optimizer NAME(params) { statements }`, or `{ rules }`: each weight runs the first rule that
// selects it.
struct Optimizer {
    std::string name;
    Loc name_loc;
    Loc loc;
    std::vector<Param> params;
    std::vector<Statement> statements;
    std::vector<Rule> rules;
};

// What the braces of an optimizer hold.
struct Body {
    std::vector<Statement> statements;
    std::vector<Rule> rules;
};

struct File {
    std::vector<Definition> definitions;  // defs and networks, in source order
    std::vector<Primitive> primitives;
    std::vector<Optimizer> optimizers;
};

}  // namespace modc::ast
