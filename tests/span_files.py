"""A small SPAN risk-parameter file (CME SPAN XML 4.00, NSE Clearing's layout) for the margin
tests: NIFTY with two futures, near-expiry options and a calendar-spread definition, and one
stock (RELIANCE) futures pair; every number chosen so the margin can be worked out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Long-unit losses in the 16 scenarios (+ = loss): a futures contract with a 2,000-point scan
# range (price moves 0, +-1/3, +-2/3, +-3/3 twice each, then the extreme moves at 35 % cover).
FUT_RA = [0, 0, -667, -667, 667, 667, -1333, -1333, 1333, 1333, -2000, -2000, 2000, 2000, -1400,
          1400]  # fmt: skip
FAR_RA = [round(1.01 * v, 2) for v in FUT_RA]
CALL_RA = [10, -10, -150, -170, 120, 100, -330, -350, 220, 200, -560, -580, 280, 260, -350, 90]
PUT_RA = [12, -8, 130, 110, -160, -180, 250, 230, -340, -360, 300, 280, -600, -620, 100, -400]

NEAR, FAR = "20261124", "20261229"


def _ra(values: list[float], delta: float) -> str:
    return "<ra>" + "".join(f"<a>{v}</a>" for v in values) + f"<d>{delta}</d></ra>"


def _fut(pe: str, price: float, ra: list[float]) -> str:
    return f"<fut><cId>1</cId><pe>{pe}</pe><p>{price}</p><d>1</d><v>0.15</v>{_ra(ra, 1.0)}</fut>"


def _portfolios(
    code: str, spot: float, near: float, far: float, som: float, rate: float, *,
    dates: tuple[str, str], call: float, put: float,
) -> str:  # fmt: skip
    near_pe, far_pe = dates
    options = (
        f"<oopPf><pfId>3</pfId><pfCode>{code}</pfCode><cvf>1</cvf><priceModel>BS</priceModel>"
        f"<series><pe>{near_pe}</pe>"
        f"<opt><cId>10</cId><o>C</o><k>{call:g}</k><p>300</p><d>0.55</d><v>0.12</v>"
        f"{_ra(CALL_RA, 0.55)}</opt>"
        f"<opt><cId>11</cId><o>P</o><k>{put:.2f}</k><p>80</p><d>-0.2</d><v>0.13</v>"
        f"{_ra(PUT_RA, -0.2)}</opt>"
        "</series></oopPf>"
    )
    return (
        f"<phyPf><pfId>1</pfId><pfCode>{code}</pfCode><phy><cId>0</cId><p>{spot}</p></phy></phyPf>"
        f"<futPf><pfId>2</pfId><pfCode>{code}</pfCode><cvf>1</cvf>"
        f"{_fut(near_pe, near, FUT_RA)}{_fut(far_pe, far, FAR_RA)}</futPf>"
        f"{options if code == 'NIFTY' else ''}"
        f"<ccDef><cc>{code}</cc><name>{code}</name><somMeth>GROSS</somMeth>"
        f"<somTiers><tier><rate><r>1</r><val>{som}</val></rate></tier></somTiers>"
        f"<dSpread><spread>1</spread><chargeMeth>F</chargeMeth><rate><r>1</r><val>{rate}</val>"
        f"</rate><pLeg><cc>{code}</cc><pe>{near_pe}</pe><rs>A</rs><i>1</i></pLeg>"
        f"<pLeg><cc>{code}</cc><pe>{far_pe}</pe><rs>B</rs><i>1</i></pLeg></dSpread>"
        "</ccDef>"
    )


def span_xml(near: str = NEAR, far: str = FAR, call: float = 25000.0, put: float = 24500.0) -> str:
    """The file; `near`/`far` (YYYYMMDD) and the call and put strikes can be moved onto
    another chain's contracts."""
    where = {"dates": (near, far), "call": call, "put": put}
    return (
        '<?xml version="1.0"?>\r\n<spanFile><fileFormat>4.00</fileFormat>'
        "<created>20261112 1030</created><pointInTime><date>20261112</date><isSetl>0</isSetl>"
        "<clearingOrg><ec>NSCCL</ec><exchange><exch>NSE</exch>"
        + _portfolios("NIFTY", 25000.0, 25100.0, 25300.0, 5.0, 420.0, **where)
        + _portfolios("RELIANCE", 1500.0, 1505.0, 1512.0, 0.0, 30.0, **where)
        + "</exchange></clearingOrg></pointInTime></spanFile>\r\n"
    )


def write_span(path: Path, **where: Any) -> Path:
    path.write_text(span_xml(**where), encoding="utf-8")
    return path
