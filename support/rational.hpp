// Exact rational arithmetic for everything from elaboration through the dual plan.
#pragma once
#include <boost/multiprecision/cpp_int.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace modc {

// Expression templates off: plain values are simpler to pass around and to use in ?:.
using Rational = boost::multiprecision::number<boost::multiprecision::cpp_rational_backend, boost::multiprecision::et_off>;
using BigInt = boost::multiprecision::cpp_int;

// "7", "-5/21": integers without a denominator.
std::string to_string(const Rational& r);
double to_double(const Rational& r);
bool is_integer(const Rational& r);
// Positive and small enough for an int64 dimension.
bool is_dimension(const Rational& r);
std::int64_t to_int64(const Rational& r);  // precondition: is_integer and fits

// Decimal literal ("12", "0.02", "1e-3", ".5") read exactly; nullopt when out of range.
std::optional<Rational> parse_decimal(std::string_view text);

// base^exp for integer exp; nullopt when the result would exceed kMaxBits or base is 0 and exp < 0.
inline constexpr unsigned kMaxBits = 4096;
std::optional<Rational> power(const Rational& base, const BigInt& exp);

// No number modc computes with (values in .mod files, masses, sensitivities) needs more than
// this many bits (bit_size): exact arithmetic on larger ones costs more than it is worth.
inline constexpr unsigned kMaxNumberBits = 2 * kMaxBits;

// Number of bits in numerator plus denominator: used to refuse absurd numbers before they cost time.
unsigned bit_size(const Rational& r);

}  // namespace modc
