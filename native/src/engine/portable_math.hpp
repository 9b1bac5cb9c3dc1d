// exp and log of float64, specified to the last bit and the same on every
// machine: cadenza/portable_math.py, operation for operation (its docstring
// says why and how).  Only + - * / and bit moves, no libm, no FMA
// (-ffp-contract=off), so the loops vectorise and any vector width gives
// the scalar loop's bits.
#pragma once
#include <cstddef>

namespace cadenza::eng {

// In place, so that the loops vectorise: with an input and an output that
// may be the same array, the compiler's overlap check would fall back to
// the scalar loop for exactly the calls the engine makes.

// a[i] = exp(a[i]); 0 below -708, infinity from 709, NaN stays NaN.
void exp_in_place(double* a, std::ptrdiff_t n);

// a[i] = log(a[i]); -infinity at 0, NaN below 0 and for NaN.
void log_in_place(double* a, std::ptrdiff_t n);

}  // namespace cadenza::eng
