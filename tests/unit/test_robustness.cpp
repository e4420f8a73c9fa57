// A sweep over bad input: garbage, truncated and mutated files, and very deep or very large
// ones. None may crash, hang or throw; every diagnostic must point into the file (or be a
// whole-file message); a file that cannot be valid must give at least one error.
//
// The unit tests run on the main thread's default stack, while modc runs the compiler on a
// 512 MB thread (tools/modc/main.cpp). The parser bounds the depth of every tree (kMaxNesting,
// kMaxExprDepth) and elaboration the depth of calls (kMaxCallDepth), so the deep inputs below
// run in-process; the one whose depth multiplies those limits runs through the binary.
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include "support.hpp"
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <unistd.h>

#include "compiler/analysis/compilation.hpp"
#include "grammar/grammar.hpp"

using namespace modc;

namespace {

using modc::test::read;

// The input, printable and short, for failure messages.
std::string shown(const std::string& text) {
    std::string out;
    for (char ch : text.substr(0, 300)) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '\n') {
            out += "\\n";
        } else if (c < 32 || c >= 127) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return text.size() > 300 ? out + "... (" + std::to_string(text.size()) + " bytes)" : out;
}

// What is wrong with one diagnostic's location, or "".
std::string bad_location(const Compilation& c, const Diagnostic& d, bool is_note) {
    if (!d.loc.valid()) return is_note ? "a note without a location" : "";
    const std::uint32_t prelude = 1;
    if (d.loc.file != c.file_id && !(is_note && d.loc.file == prelude)) return "a location in another file";
    auto size = c.sources.file(d.loc.file).text().size();
    if (d.loc.begin > d.loc.end || d.loc.end > size) return "a location outside the file";
    if (d.message.empty()) return "an empty message";
    return "";
}

// Compiles `text` through every stage and checks the invariants; returns the compilation.
std::unique_ptr<Compilation> survive(const std::string& text, bool must_fail) {
    std::unique_ptr<Compilation> c;
    try {
        c = compile_source("input.mod", text);
    } catch (const std::exception& e) {
        FAIL("compile_source threw '" << e.what() << "' on: " << shown(text));
    }
    for (const auto& d : c->diags.all()) {
        std::string problem = bad_location(*c, d, false);
        for (const auto& n : d.notes)
            if (problem.empty()) problem = bad_location(*c, n, true);
        if (!problem.empty()) FAIL(problem << " in '" << d.message << "' on: " << shown(text));
    }
    std::string rendered;
    try {
        rendered = c->diags.render();
    } catch (const std::exception& e) {
        FAIL("rendering threw '" << e.what() << "' on: " << shown(text));
    }
    if (must_fail && !c->diags.has_errors()) FAIL("no error on: " << shown(text));
    if (!c->diags.has_errors()) {
        // A file without errors lost none of its networks.
        std::size_t declared = 0;
        for (const auto& d : c->file.definitions) declared += d.is_network;
        if (c->networks.size() != declared)
            FAIL(declared << " networks declared, " << c->networks.size() << " elaborated, no error, on: " << shown(text));
    }
    return c;
}

// Characters that can appear in a valid file only inside comments.
bool has_foreign_byte(const std::string& text) {
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || std::isspace(c) || c == '_') continue;
        if (std::string("(){},:;=+-*/^@.>").find(ch) != std::string::npos) continue;
        return true;
    }
    return false;
}

bool must_fail(const std::string& text) { return text.find('#') == std::string::npos && has_foreign_byte(text); }

std::vector<std::pair<std::string, std::string>> reference_cases() {
    std::vector<std::pair<std::string, std::string>> cases;
    for (const auto& entry : std::filesystem::directory_iterator(MODC_SHARED_CASES))
        if (entry.path().extension() == ".mod") cases.emplace_back(entry.path().filename().string(), read(entry.path()));
    std::sort(cases.begin(), cases.end());
    return cases;
}

// Text in the style of the prelude: atoms, bonds, fields, an optimizer and networks.
const char* const kPreludeLike =
    "# custom primitives\n"
    "atom W(dout: dim, din: dim, m: number = 1) : din -> dout {\n"
    "    shape = (dout, din)\n"
    "    norm = rms_to_rms\n"
    "    mass = m\n"
    "}\n"
    "bond Half : x -> x { sensitivity = 1/2 }\n"
    "bond Split : x -> (x, x)\n"
    "def block(d, L = 2) = (1 - 1/L) * Identity + 1/L * W(d, d) @ GELU\n"
    "optimizer sgd(lr = 0.1) { w -= lr * dualize(g); }\n"
    "network n(d = 8) = Add @ Split @ tare(block(d) ^ 3, 2) @ W(d, 4, m = 1e-1) as top\n";

// Runs modc on `text` in a file of its own; returns the exit status and what it printed.
std::pair<int, std::string> run_modc(const std::string& name, const std::string& text) {
    auto dir = std::filesystem::temp_directory_path() / ("modc_robustness_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto path = dir / name;
    {
        std::ofstream out(path, std::ios::binary);
        out << text;
    }
    std::string command = "timeout 20 '" MODC_BINARY "' check '" + path.string() + "' 2>&1";
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
    int status = ::pclose(pipe);
    std::filesystem::remove_all(dir);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string repeat(const std::string& s, int n) {
    std::string out;
    out.reserve(s.size() * static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

// AddressSanitizer and UndefinedBehaviorSanitizer (scripts/sanitize.sh) slow exact arithmetic
// and allocation-heavy code about 16 times: the time limits below hold for a plain build, and
// are that much longer under the sanitizers.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kSlowdown = 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr double kSlowdown = 20;
#else
constexpr double kSlowdown = 1;
#endif
#else
constexpr double kSlowdown = 1;
#endif

// CPU seconds of the calling thread: unlike the wall clock, not stretched by other processes
// on a loaded machine (ctest -j, other builds), so the limits below stay meaningful there.
double thread_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Runs `f` (on this thread) and fails if it takes longer than `seconds` of CPU time: a guard
// against quadratic behaviour.
template <class F>
void within(double seconds, const std::string& what, F&& f) {
    const double start = thread_cpu_seconds();
    f();
    const double took = thread_cpu_seconds() - start;
    INFO(what << " took " << took << " s of CPU time");
    CHECK(took < seconds * kSlowdown);
}

}  // namespace

TEST_CASE("robustness: random garbage bytes", "[robustness]") {
    std::mt19937 rng(20240601);
    std::uniform_int_distribution<int> byte(0, 255), length(0, 400);
    int failing = 0;
    for (int i = 0; i < 400; ++i) {
        std::string text(static_cast<std::size_t>(length(rng)), '\0');
        for (char& c : text) c = static_cast<char>(byte(rng));
        failing += must_fail(text);
        survive(text, must_fail(text));
    }
    CHECK(failing > 100);  // the check above did assert errors for these (the others hold a '#')
}

TEST_CASE("robustness: random printable garbage", "[robustness]") {
    std::mt19937 rng(7);
    const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ \t\n\r(){},:;=+-*/^@.>#$!?\"'\\";
    std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1), length(0, 300);
    for (int i = 0; i < 400; ++i) {
        std::string text(length(rng), ' ');
        for (char& c : text) c = alphabet[pick(rng)];
        survive(text, must_fail(text));
    }
}

TEST_CASE("robustness: random token soup", "[robustness]") {
    // Tokens of the language in random order reach further into the parser and elaborator.
    const std::vector<std::string> tokens = {
        "network", "def", "atom", "bond", "optimizer", "as", "n", "f", "x", "d", "(", ")", "(", ")", ",", "=",
        "=", ":", "->", "{", "}", ";", "+", "-", "*", "/", "@", "@", "^", "-=", "+=", "0", "1", "2", "3", "0.5",
        "1e-3", "1e400", "Linear(4, 4)", "Linear", "ReLU", "Add", "Mul", "tare", "dim", "mass", "norm", "shape",
        "sensitivity", "rms", "spectral", "Identity", "Embed", "Conv2D", "\n", "\n", "\n", "_", "2^2^2",
        "network n = ", "def f(x) = ", "Linear(4, 4) @ ReLU", "(ReLU,)", "x -> x", "# c\n"};
    std::mt19937 rng(11);
    std::uniform_int_distribution<std::size_t> pick(0, tokens.size() - 1), length(1, 60);
    for (int i = 0; i < 1500; ++i) {
        std::string text;
        for (std::size_t k = length(rng); k > 0; --k) text += tokens[pick(rng)] + " ";
        survive(text, false);
    }
}

TEST_CASE("robustness: every truncation of the reference cases and of prelude-like text", "[robustness]") {
    auto cases = reference_cases();
    REQUIRE(cases.size() >= 7);
    cases.emplace_back("prelude-like", kPreludeLike);
    cases.emplace_back("prelude", prelude_text());
    for (const auto& [name, text] : cases) {
        INFO(name);
        for (std::size_t n = 0; n <= text.size(); ++n) survive(text.substr(0, n), false);
    }
}

TEST_CASE("robustness: random single-byte mutations", "[robustness]") {
    auto cases = reference_cases();
    cases.emplace_back("prelude-like", kPreludeLike);
    std::mt19937 rng(5);
    const std::string interesting = "()(){},:=@^*-/+.0123456789 \n#\x00\xff_aZ";
    for (const auto& [name, text] : cases) {
        INFO(name);
        std::uniform_int_distribution<std::size_t> where(0, text.size() - 1), which(0, interesting.size() - 1);
        std::uniform_int_distribution<int> byte(0, 255), kind(0, 3);
        for (int i = 0; i < 300; ++i) {
            std::string mutated = text;
            std::size_t at = where(rng);
            switch (kind(rng)) {
                case 0: mutated[at] = static_cast<char>(byte(rng)); break;
                case 1: mutated[at] = interesting[which(rng)]; break;
                case 2: mutated.erase(at, 1); break;
                default: mutated.insert(at, 1, interesting[which(rng)]); break;
            }
            survive(mutated, false);
        }
    }
}

TEST_CASE("robustness: empty files, comments, NUL bytes, CRLF and tabs", "[robustness]") {
    for (const std::string text : {"", "\n", "# only a comment", "# a\n# b\n\n", "   \t  \r\n", "#"}) {
        auto c = survive(text, false);
        CHECK(c->diags.all().empty());
        CHECK(c->networks.empty());
    }
    // NUL bytes: outside a comment an error, inside one nothing.
    survive(std::string("network n = ReLU\0", 17), true);
    survive(std::string("\0network n = ReLU", 17), true);
    survive(std::string("network n = Re\0LU", 17), true);
    auto commented = survive(std::string("# \0 in a comment\nnetwork n = ReLU\n", 34), false);
    CHECK(commented->diags.all().empty());
    // A NUL in an error message is shown as '?'.
    auto nul = survive(std::string("network n = ReLU \0", 18), true);
    CHECK(nul->diags.all()[0].message == "unexpected '?'; expected an operator or a new declaration");

    // CRLF line endings give the same network and the same positions as LF.
    std::string mlp = read(std::filesystem::path(MODC_SHARED_CASES) / "mlp.mod");
    std::string crlf;
    for (char ch : mlp) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
    auto lf = survive(mlp, false);
    auto cr = survive(crlf, false);
    REQUIRE(cr->networks.size() == 1);
    CHECK(cr->networks[0].leaves.size() == lf->networks[0].leaves.size());
    auto bad = survive("network n =\r\n    Linear(2, 3) @ Linear(2, 2)\r\n", true);
    CHECK(bad->diags.render() ==
          "input.mod:2:5: error: modules do not fit: 'Linear(2, 3)' expects 3 features as input, but "
          "'Linear(2, 2)' outputs 2 features\n"
          "    Linear(2, 3) @ Linear(2, 2)\n"
          "    ^~~~~~~~~~~~\n"
          "input.mod:2:20: note: 'Linear(2, 2)' is here\n"
          "    Linear(2, 3) @ Linear(2, 2)\n"
          "                   ^~~~~~~~~~~~\n");

    // Tabs stay in the caret line, so that the caret lines up under tab-indented source.
    auto tabs = survive("network n =\n\t\tLinear(2, 2) @ Lnear(2, 2)\n", true);
    std::string rendered = tabs->diags.render();
    CHECK(rendered.find("input.mod:2:18: error: unknown name 'Lnear'; did you mean 'Linear'?\n"
                        "\t\tLinear(2, 2) @ Lnear(2, 2)\n"
                        "\t\t               ^~~~~\n") == 0);
}

TEST_CASE("robustness: very deep brackets", "[robustness][deep]") {
    within(5, "10^5 brackets", [] {
        auto c = survive("network n = " + std::string(100000, '(') + "\n", true);
        CHECK(c->diags.all()[0].message == "brackets nest more than 200 levels deep");
        auto closed = survive("network n = " + std::string(100000, '(') + "ReLU" + std::string(100000, ')'), true);
        CHECK(closed->diags.error_count() == 1);
        survive(std::string(100000, '{'), true);
        survive("atom A : x -> x " + std::string(100000, '{'), true);
    });
    // Just under the limit, every kind of bracket that builds a tree.
    survive("network n = " + repeat("(ReLU, ", kMaxNesting) + "ReLU" + std::string(kMaxNesting, ')'), false);
    survive("network n = " + repeat("ReLU @ (", kMaxNesting) + "ReLU" + std::string(kMaxNesting, ')'), false);
    survive("network n = " + repeat("Mul(", kMaxNesting) + "1" + std::string(kMaxNesting, ')'), true);
}

TEST_CASE("robustness: very long chains and deep operators", "[robustness][deep]") {
    within(10, "chains of 10^5", [] {
        // Long chains of one operator are one n-ary node: no depth, and linear time.
        auto ok = survive("network n = ReLU" + repeat(" @ ReLU", 100000), false);
        CHECK(ok->networks.size() == 1);
        auto unknown = survive("network n = a" + repeat(" @ a", 100000), true);
        CHECK(unknown->diags.error_count() == 100001);
        survive("network n = ReLU" + repeat(" + ReLU", 30000), false);
        survive("network n = (ReLU" + repeat(", ReLU", 30000) + ")", false);
        survive("network n = Mul(1" + repeat(" + 1", 30000) + ")", false);
        auto scaled = survive("network n = ReLU" + repeat(" * 1", 30000), false);
        CHECK(scaled->networks.size() == 1);
        survive("network n = ReLU" + repeat(" * 2", 30000), true);
    });
    within(10, "prefix signs and powers", [] {
        // Prefix minus signs and '^' nest: deeper than kMaxExprDepth is one error.
        auto signs = survive("network n = " + repeat("- ", 100000) + "x", true);
        CHECK(signs->diags.error_count() == 1);
        CHECK(signs->diags.all()[0].message == "expression nests more than 1000 levels deep");
        auto powers = survive("network n = Mul(2" + repeat("^2", 100000) + ")", true);
        CHECK(powers->diags.error_count() == 1);
        survive("network n = Mul(2" + repeat("^-2", 100000) + ")", true);
        // Just under the limit they elaborate (to Mul(-1) bonds and exact powers).
        auto deep = survive("network n = " + repeat("- ", kMaxExprDepth - 1) + "ReLU", false);
        CHECK(deep->networks.size() == 1);
        survive("network n = Mul(1" + repeat("^1", kMaxExprDepth - 2) + ")", false);
        auto big = survive("network n = Mul(2" + repeat("^2", kMaxExprDepth - 2) + ")", true);
        CHECK(big->diags.all()[0].message == "this power is too large to compute exactly");
    });
}

TEST_CASE("robustness: exponential growth is cut off", "[robustness][large]") {
    within(15, "exponential networks", [] {
        std::string doubling = "def f0 = ReLU\n";
        for (int i = 1; i <= 40; ++i)
            doubling += "def f" + std::to_string(i) + " = (f" + std::to_string(i - 1) + ", f" + std::to_string(i - 1) + ")\n";
        auto c = survive(doubling + "network n = f40\n", true);
        REQUIRE(c->diags.error_count() == 1);
        CHECK(c->diags.all()[0].message == "network 'n' grows past modc's limit of 1000000 modules");

        auto power = survive("network n = Linear(2, 2) ^ 1000000000", true);
        CHECK(power->diags.error_count() == 1);
        auto nested = survive("network n = ((Linear(2, 2) ^ 1000) ^ 1000) ^ 1000", true);
        CHECK(nested->diags.error_count() == 1);
        auto sensitivity = survive("network n = Mul(3) ^ 100000", true);
        CHECK(sensitivity->diags.all()[0].message == "the sensitivity of this module is too large to compute exactly");
        survive("def m = Mul(3) ^ 5000\nnetwork n = m" + repeat(" @ m", 10), true);
        survive("network n = (Mul(1/3), Mul(1/5), Mul(1/7), Mul(1/11))" + repeat(" @ (Mul(1/3), Mul(1/5))", 3000), true);
        survive("network n = tare(Linear(2, 2), 3^2500) ^ 1000", false);
        survive("network n = Linear(2, 2, mass = 3^5000)", true);
    });
}

TEST_CASE("robustness: huge numbers and long names", "[robustness][large]") {
    within(10, "huge numbers", [] {
        survive("network n = Mul(1" + std::string(100000, '0') + ")", true);
        survive("network n = Mul(0." + std::string(100000, '0') + "1)", true);
        survive("network n = Mul(1e100000)", true);
        survive("network n = Mul(1e-100000)", true);
        survive("network n = Mul(1e" + std::string(100000, '9') + ")", true);
        survive("network n = Mul(10^100000)", true);
        survive("network n = Mul(10^-100000)", true);
        survive("network n = Mul(10^(10^10))", true);
        survive("network n = Linear(10^18, 2)", true);
        survive("network n = Linear(2, 2) ^ (10^30)", true);
        survive("network n = Linear(2, 2) ^ (1/3)", true);
        survive("network n = Mul(" + repeat("3^2500 * ", 100) + "1)", true);
        survive("network n = Mul(0" + repeat(" + 1/" + std::to_string(7919), 1) + repeat(" + 1/3^2000", 10) + ")", false);
    });
    within(10, "long names", [] {
        std::string name(100000, 'a');
        survive("network n = " + name, true);
        survive("def " + name + " = ReLU\nnetwork n = " + std::string(100000, 'b'), true);
        survive("network " + name + " = ReLU", false);
        survive("network n = Linear(4, 4, " + name + " = 1)", true);
    });
}

TEST_CASE("robustness: many errors in one file stay fast", "[robustness][large]") {
    within(10, "10^4 errors of each kind", [] {
        auto syntax = survive(repeat("network n = ReLU @\n", 10000), true);
        CHECK(syntax->diags.error_count() == 10000);
        auto redefined = survive(repeat("def a = ReLU\n", 10000) + "network n = a\n", true);
        CHECK(redefined->diags.error_count() == 9999);
        survive(repeat("network n = Lnear(2, 2) @ Relu\n", 5000), true);
        survive(repeat("junk\n", 10000), true);
        survive(repeat("# comment\n", 100000) + "network n = ReLU @\n" + repeat("# comment\n", 100000), true);
    });
}

TEST_CASE("robustness: definitions at the call-depth limit, each as deep as allowed", "[robustness][deep]") {
    // 64 nested calls, each through an expression 1000 levels deep: the product of the two limits
    // is the deepest recursion elaboration can reach. modc runs it on its large stack; it must
    // finish with one located error (the last call is one too many).
    std::string text = "def f0 = ReLU\n";
    for (int i = 1; i <= kMaxCallDepth; ++i)
        text += "def f" + std::to_string(i) + " = " + repeat("- ", kMaxExprDepth - 2) + "f" + std::to_string(i - 1) + "\n";
    text += "network n = f" + std::to_string(kMaxCallDepth) + "\n";
    auto [status, output] = run_modc("deep_calls.mod", text);
    INFO(output.substr(0, 2000));
    CHECK(status == 1);
    CHECK(output.find("deep_calls.mod:") != std::string::npos);
    CHECK(output.find(": error: definitions nest more than 64 calls deep") != std::string::npos);

    // With the network itself as the first call, a chain two shorter fits, and checks cleanly.
    std::string fits = "def f0 = ReLU\n";
    for (int i = 1; i <= kMaxCallDepth - 2; ++i)
        fits += "def f" + std::to_string(i) + " = " + repeat("- ", kMaxExprDepth - 2) + "f" + std::to_string(i - 1) + "\n";
    fits += "network n = f" + std::to_string(kMaxCallDepth - 2) + "\n";
    auto [ok_status, ok_output] = run_modc("deep_calls_fit.mod", fits);
    INFO(ok_output.substr(0, 2000));
    CHECK(ok_status == 0);
}

TEST_CASE("robustness: the binary survives what the library does", "[robustness][binary]") {
    // The same limits hold through modc itself: exit status 1 and a located error, never a crash.
    struct Case {
        const char* name;
        std::string text;
        const char* message;
    };
    const std::vector<Case> cases = {
        {"brackets.mod", "network n = " + std::string(100000, '('), "brackets nest more than 200 levels deep"},
        {"signs.mod", "network n = " + repeat("- ", 100000) + "ReLU", "expression nests more than 1000 levels deep"},
        {"powers.mod", "network n = Mul(2" + repeat("^2", 100000) + ")", "expression nests more than 1000 levels deep"},
        {"copies.mod", "network n = Linear(2, 2) ^ 1000000000", "would exceed modc's limit of 1000000 modules"},
        {"number.mod", "network n = Mul(1e100000)", "is out of range"},
        {"garbage.mod", std::string("\x01\x02\xff\xfe network", 12), "expected a declaration"},
    };
    for (const auto& c : cases) {
        auto [status, output] = run_modc(c.name, c.text);
        INFO(c.name << ": " << output.substr(0, 1000));
        CHECK(status == 1);
        CHECK(output.find(std::string(c.name) + ":1:") != std::string::npos);
        CHECK(output.find(c.message) != std::string::npos);
    }
}

TEST_CASE("robustness: work that ends in errors still spends the elaboration budget", "[robustness][large]") {
    // Issue 15: definitions that call the one before twice, 65 deep. Past the call depth every
    // call is an error that builds no module, so only a budget that counts the work of failed
    // calls stops the 2^64 of them.
    auto chain = [](const std::string& base, int depth, const std::string& op) {
        std::string text = "def f0(x) = " + base + "\n";
        for (int i = 1; i <= depth; ++i)
            text += "def f" + std::to_string(i) + "(x) = f" + std::to_string(i - 1) + "(x) " + op + " f" +
                    std::to_string(i - 1) + "(x)\n";
        return text;
    };
    const std::string limit = "network 'n' takes more than modc's limit of " + std::to_string(kMaxElaborationSteps) +
                              " steps to elaborate";
    within(5, "65 levels of calls past the call depth", [&] {
        for (const char* base : {"ReLU", "Linear(x, x)"}) {
            auto c = survive(chain(base, 65, "@") + "network n = f65(4)\n", true);
            std::set<std::string> messages;
            for (const auto& d : c->diags.all()) messages.insert(d.message);
            CHECK(messages == std::set<std::string>{limit, "definitions nest more than 64 calls deep"});
        }
    });
    within(10, "2^60 operations on numbers of thousands of bits", [&] {
        auto c = survive(chain("x * 3^2500 / 5^1700 * 5^1700 / 3^2500", 60, "-") + "network n = Linear(4, 4) * f60(1)\n",
                         true);
        REQUIRE(c->diags.error_count() == 1);
        CHECK(c->diags.all()[0].message == limit);
    });
    within(10, "2^60 additions of numbers, then another network", [&] {
        // No module and no error: only the budget stops it. It holds for the whole file, so the
        // next network finds it spent, and says so.
        auto c = survive(chain("x + 1", 60, "+") + "network n = Linear(4, 4) * f60(1)\nnetwork m = ReLU\n", true);
        REQUIRE(c->diags.error_count() == 2);
        CHECK(c->diags.all()[0].message == limit);
        CHECK(c->diags.all()[1].message ==
              "network 'm' takes more than modc's limit of " + std::to_string(kMaxElaborationSteps) + " steps to elaborate");
        bool noted = false;
        for (const auto& n : c->diags.all()[1].notes) noted |= n.message.rfind("the limit holds for the whole file", 0) == 0;
        CHECK(noted);
    });
}

TEST_CASE("robustness: a network near the module limit fits the elaboration budget", "[robustness][large]") {
    // 2^18 Conv2D atoms with a mass given as a fraction, in a tree of tuples: 524287 modules of
    // the costliest standard atom, about 13.6 million steps. Half the module limit takes under
    // half the budget, so that a network the module limit allows is not refused for its work.
    std::string text = "def f0 = Conv2D(4, 4, 3, mass = 2/3)\n";
    for (int i = 1; i <= 18; ++i)
        text += "def f" + std::to_string(i) + " = (f" + std::to_string(i - 1) + ", f" + std::to_string(i - 1) + ")\n";
    text += "network n = f18\n";
    auto c = compile_source("input.mod", text, {}, Stage::IR);
    INFO(c->diags.render());
    CHECK(!c->diags.has_errors());
    CHECK(c->networks.size() == 1);
}

TEST_CASE("robustness: a source text over 16 MiB is refused", "[robustness][large]") {
    std::string text(kMaxSourceBytes + 1, ' ');
    auto c = compile_source("input.mod", text);
    REQUIRE(c->diags.error_count() == 1);
    CHECK(c->diags.all()[0].message ==
          "the source text (16777217 bytes) is larger than modc's limit of 16 MiB for a source file");
    std::string read, error;
    CHECK_FALSE(read_source_file("/dev/zero", read, error));
    CHECK(error == "'/dev/zero' is larger than modc's limit of 16 MiB for a source file");
    CHECK(read.empty());
    CHECK_FALSE(read_source_file(MODC_SOURCE_DIR, read, error));
    CHECK(error == "cannot read '" MODC_SOURCE_DIR "'");
    CHECK(read_source_file(MODC_SOURCE_DIR "/examples/mlp.mod", read, error));
    CHECK(read.find("network mlp") != std::string::npos);
}

TEST_CASE("robustness: bytes from 0x80 on where blanks, names and numbers are read", "[robustness]") {
    // Found by tests/fuzz: the grammar classified such bytes with std::isspace and its kin on a
    // negative char (undefined; an assertion in Boost's debug builds). Each is an ordinary
    // syntax error at its place.
    struct Case {
        std::string text;
        std::uint32_t column;
    };
    for (const auto& [text, column] : {Case{"network a = ReLU\xa0\n", 17}, Case{"network \xc3\xa9 = ReLU\n", 9},
                                       Case{"network b = Linear(4\xff, 4)\n", 21}, Case{"\xff\xfe network a = ReLU\n", 1},
                                       Case{"network a = ReLU # comment \xe2\x80\x94 a dash\n", 0}}) {
        INFO(shown(text));
        auto c = survive(text, column != 0);
        if (column == 0) {
            CHECK_FALSE(c->diags.has_errors());  // in a comment, any byte is fine
            continue;
        }
        REQUIRE(c->diags.error_count() >= 1);
        CHECK(c->sources.file(c->file_id).line_col(c->diags.all()[0].loc.begin).col == column);
    }
}
