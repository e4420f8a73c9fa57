#include "support/surd.hpp"

#include <cmath>

namespace modc {

namespace {

// n = square^2 * rest, with the square factors of primes up to 10^6 pulled out.
void split_square(BigInt n, BigInt& square, BigInt& rest) {
    square = 1;
    for (BigInt p = 2; p * p <= n && p < 1000000; p += (p == 2 ? 1 : 2)) {
        BigInt pp = p * p;
        while (n % pp == 0) {
            n /= pp;
            square *= p;
        }
    }
    rest = n;
}

}  // namespace

Surd Surd::sqrt_of(const Rational& r) {
    using boost::multiprecision::denominator;
    using boost::multiprecision::numerator;
    if (r == 0) return Surd{0, 1};
    // sqrt(p/q) = sqrt(p q) / q
    BigInt p = numerator(r), q = denominator(r);
    BigInt square, rest;
    split_square(p * q, square, rest);
    return Surd{Rational(square) / Rational(q), rest};
}

Surd Surd::operator*(const Surd& o) const {
    Surd s = sqrt_of(Rational(radicand * o.radicand));
    return Surd{coeff * o.coeff * s.coeff, s.radicand};
}

double Surd::value() const { return to_double(coeff) * std::sqrt(radicand.convert_to<double>()); }

std::string Surd::str() const {
    if (radicand == 1 || coeff == 0) return to_string(coeff);
    std::string root = "sqrt(" + radicand.str() + ")";
    using boost::multiprecision::denominator;
    using boost::multiprecision::numerator;
    if (coeff == 1) return root;
    if (numerator(coeff) == 1) return root + "/" + denominator(coeff).str();
    return to_string(coeff) + " * " + root;
}

}  // namespace modc
