#include "support/rational.hpp"

#include <cctype>
#include <limits>

namespace modc {

using boost::multiprecision::denominator;
using boost::multiprecision::numerator;

std::string to_string(const Rational& r) {
    if (denominator(r) == 1) return numerator(r).str();
    return numerator(r).str() + "/" + denominator(r).str();
}

double to_double(const Rational& r) { return r.convert_to<double>(); }

bool is_integer(const Rational& r) { return denominator(r) == 1; }

bool is_dimension(const Rational& r) {
    return is_integer(r) && r > 0 && numerator(r) <= BigInt(std::numeric_limits<std::int64_t>::max() / 1024);
}

std::int64_t to_int64(const Rational& r) { return numerator(r).convert_to<std::int64_t>(); }

unsigned bit_size(const Rational& r) {
    BigInt n = abs(numerator(r));
    unsigned bits = n == 0 ? 0 : static_cast<unsigned>(msb(n)) + 1;
    return bits + static_cast<unsigned>(msb(denominator(r))) + 1;
}

std::optional<Rational> parse_decimal(std::string_view text) {
    std::size_t i = 0;
    BigInt mantissa = 0;
    long scale = 0;  // value = mantissa * 10^(exponent - scale)
    bool digits = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        mantissa = mantissa * 10 + (text[i++] - '0');
        digits = true;
        if (msb(mantissa + 1) > kMaxBits) return std::nullopt;
    }
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            mantissa = mantissa * 10 + (text[i++] - '0');
            ++scale;
            digits = true;
            if (msb(mantissa + 1) > kMaxBits) return std::nullopt;
        }
    }
    if (!digits) return std::nullopt;
    long exponent = 0;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        bool negative = false;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
        bool any = false;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            exponent = exponent * 10 + (text[i++] - '0');
            any = true;
            if (exponent > 1000) return std::nullopt;
        }
        if (!any) return std::nullopt;
        if (negative) exponent = -exponent;
    }
    if (i != text.size()) return std::nullopt;
    long e = exponent - scale;
    if (e > 1000 || e < -1000) return std::nullopt;
    BigInt ten = boost::multiprecision::pow(BigInt(10), static_cast<unsigned>(e < 0 ? -e : e));
    return e >= 0 ? Rational(mantissa * ten) : Rational(mantissa, ten);
}

std::optional<Rational> power(const Rational& base, const BigInt& exp) {
    if (base == 0) {
        if (exp < 0) return std::nullopt;
        return exp == 0 ? Rational(1) : Rational(0);
    }
    if (base == 1 || exp == 0) return Rational(1);
    if (base == -1) return (exp % 2 == 0) ? Rational(1) : Rational(-1);
    BigInt e = abs(exp);
    // Refuse before computing: the result has about bit_size(base) * |exp| bits.
    if (e > kMaxBits || BigInt(bit_size(base)) * e > BigInt(2 * kMaxBits)) return std::nullopt;
    auto k = e.convert_to<unsigned>();
    Rational num = boost::multiprecision::pow(BigInt(numerator(base)), k);
    Rational den = boost::multiprecision::pow(BigInt(denominator(base)), k);
    Rational result = num / den;
    return exp < 0 ? Rational(1) / result : result;
}

}  // namespace modc
