// Exact numbers of the form c * sqrt(r): the scale factors of duality maps (sqrt(dout/din)
// for Linear) stay exact through the dual plan, and only become floats at the kernel plan.
#pragma once
#include <string>

#include "support/rational.hpp"

namespace modc {

struct Surd {
    Rational coeff = 1;
    BigInt radicand = 1;  // square-free as far as small primes go; 1 means a plain rational

    static Surd sqrt_of(const Rational& r);  // precondition: r >= 0
    Surd operator*(const Rational& r) const { return Surd{coeff * r, radicand}; }
    Surd operator*(const Surd& o) const;
    double value() const;
    std::string str() const;  // "5/21", "sqrt(10)/16", "1/3 * sqrt(2)"
};

}  // namespace modc
