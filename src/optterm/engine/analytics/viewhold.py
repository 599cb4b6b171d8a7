"""The market view shown from tick to tick: the raw view (`view.market_view`) with hysteresis.

A raw view is recomputed from each chain; read as is it flips whenever one vote crosses its
threshold and back. The view shown changes only under this rule:

1. **Band.** Bullish is entered at a score ≥ +1 and kept while the score stays ≥ +0.5
   (`EXIT_SCORE`); bearish likewise at ≤ −1, kept while ≤ −0.5. Below the band the candidate is
   the raw view (neutral, range, or the opposite side).
2. **Hold.** A candidate different from the view shown replaces it only after it has been the
   candidate on `HOLD_TICKS` consecutive new chains (a repeated chain with the same data time
   counts nothing). The first chain of a session shows its raw view at once.

So one noisy vote can neither start nor end a view, and the view changes at most once every
`HOLD_TICKS` new chains. The reasons of a held view say so ("held: …").
"""

from __future__ import annotations

from dataclasses import dataclass

from optterm.model import Bias, MarketView

__all__ = ["EXIT_SCORE", "HOLD_TICKS", "ViewHold"]

EXIT_SCORE = 0.5
HOLD_TICKS = 3


def _banded(shown: Bias | None, raw: MarketView) -> Bias:
    if shown is Bias.BULLISH and raw.score >= EXIT_SCORE:
        return Bias.BULLISH
    if shown is Bias.BEARISH and raw.score <= -EXIT_SCORE:
        return Bias.BEARISH
    return raw.bias


@dataclass(slots=True)
class ViewHold:
    """One chain's shown view; feed it each new chain's raw view."""

    shown: Bias | None = None
    pending: Bias | None = None
    count: int = 0

    def update(self, raw: MarketView) -> MarketView:
        candidate = _banded(self.shown, raw)
        if self.shown is None or candidate is self.shown:
            self.shown, self.pending, self.count = candidate, None, 0
        else:
            self.count = self.count + 1 if candidate is self.pending else 1
            self.pending = candidate
            if self.count >= HOLD_TICKS:
                self.shown, self.pending, self.count = candidate, None, 0
        if self.shown is raw.bias:
            return raw
        if self.pending is not None:
            why = f"held: {self.pending.value} for {self.count} of {HOLD_TICKS} chains so far"
        else:
            edge = EXIT_SCORE if self.shown is Bias.BULLISH else -EXIT_SCORE
            cmp = "≥" if edge > 0 else "≤"
            why = f"held {self.shown.value}: score {raw.score:+.1f} still {cmp} {edge:+.1f}"
        return MarketView(self.shown, raw.score, (*raw.reasons, why))
