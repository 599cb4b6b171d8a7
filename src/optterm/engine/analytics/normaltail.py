"""The standard normal's lower tail as a rational fit, shared by the numpy Greeks
(analytics/blackmath.py) and the compiled ones for big batches (analytics/greeks_jit.py), which
must evaluate the same function to agree to the last bits."""

from __future__ import annotations

import math
from typing import Final

__all__ = ["INV_SQRT_2PI", "TAIL_CUT", "TAIL_P", "TAIL_Q"]

INV_SQRT_2PI: Final = 1.0 / math.sqrt(2.0 * math.pi)

# The lower tail N(-u) = e^{-u^2/2} R(u), u >= 0, with R(u) = erfcx(u / sqrt 2) / 2 approximated
# by the rational function TAIL_P(u) / TAIL_Q(u) (coefficients from u^0 up). They were fitted
# in 50-digit arithmetic by iteratively reweighted least squares on the relative error (Loeb's
# linearisation with Lawson weights) over [0, TAIL_CUT], where the fit's relative error is
# 2.8e-15; evaluated in float64 the tail is within 3.9e-15 of the exact value there, as scipy's
# ndtr is (3.7e-15; measured on 20,001 points against 40-digit values). Degree (7, 8) reaches
# 1.6e-15 but costs 8 more array passes per option, ~7 % of the Greeks. Both polynomials have
# positive coefficients, so Horner's rule on u >= 0 cancels nothing. Unlike scipy's ndtr, which
# branches per element on the range of its argument (and mispredicts about every other branch
# on random options), this is a branch-free pass per operation, and it shares e^{-d1^2/2} with
# phi(d1).
TAIL_P = (
    0.5000000000000013, 0.5193836078186975, 0.2700580227609593, 0.08407365422423915,
    0.016304072113584842, 0.0018585499231410598, 9.787765693750407e-05,
)  # fmt: skip
TAIL_Q = (
    1.0, 1.8366517764407353, 1.5055521415016309, 0.7170397498344844, 0.21542571712699085,
    0.0411118502350349, 0.0046587701117933025, 0.0002453412810431421,
)  # fmt: skip
# Beyond this (about 1 % of the d1 and d2 of a typical draw) scipy's ndtr takes over.
TAIL_CUT = 4.5
