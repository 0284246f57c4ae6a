"""Promotion gates (DESIGN.md): a pure decision, so that a failed gate is an outcome, not an exception.

A candidate passes only if (1) its test NME is below the config's threshold, (2) when the config asks,
it beats the mean shape on the same test split by the required factor (a bar that scales with how hard
the data is), (3) it is not worse than the current champion on the same data (within a tolerance; a champion
whose NME on this data cannot be measured fails this gate, so a candidate is never promoted uncompared), and
(4) its ONNX export reproduces the PyTorch NME (|ΔNME| within the parity tolerance). When the config sets
`max_real_nme` and evaluate measured real faces, their NME must be below it too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from landmarkflow.config import GateConfig


@dataclass(frozen=True)
class GateCheck:
    """One gate: its name, whether it passed, and a sentence saying why."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """All gates for one candidate; `passed` only if every check passed."""

    candidate_nme: float
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def reasons(self) -> str:
        """The failed checks' details, or 'all gates passed'."""
        failed = [c.detail for c in self.checks if not c.passed]
        return "; ".join(failed) if failed else "all gates passed"

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "reasons": self.reasons()}


def decide(
    candidate_nme: float,
    parity_delta: float,
    config: GateConfig,
    champion_nme: float | None,
    champion_label: str = "champion",
    baseline_nme: float | None = None,
    real_nme: float | None = None,
    champion_unmeasured: str | None = None,
) -> GateDecision:
    """Apply the gates; `champion_nme` is None when there is no champion yet (that gate passes).

    `champion_unmeasured` says why a champion's NME on this data is unknown: the champion gate then fails with it.

    `baseline_nme` (the mean shape's NME on the same test split) is needed when `config.min_baseline_ratio` is set.
    `real_nme` (the NME on real faces, None when none were measured) is checked when `config.max_real_nme` is set.
    """
    checks = []
    threshold_ok = math.isfinite(candidate_nme) and candidate_nme < config.max_nme
    relation = "<" if threshold_ok else ">="
    checks.append(
        GateCheck(
            "nme_threshold",
            threshold_ok,
            f"test NME {100 * candidate_nme:.3f}% {relation} threshold {100 * config.max_nme:.3f}%",
        )
    )
    if config.min_baseline_ratio is not None:
        checks.append(_baseline_check(candidate_nme, baseline_nme, config.min_baseline_ratio))
    if config.max_real_nme is not None and real_nme is not None:
        real_ok = math.isfinite(real_nme) and real_nme < config.max_real_nme
        checks.append(
            GateCheck(
                "real_nme_threshold",
                real_ok,
                f"real-face NME {100 * real_nme:.3f}% {'<' if real_ok else '>='} threshold "
                f"{100 * config.max_real_nme:.3f}%",
            )
        )
    checks.append(
        GateCheck("vs_champion", False, champion_unmeasured)
        if champion_unmeasured is not None
        else champion_check(candidate_nme, champion_nme, config.champion_tolerance, champion_label)
    )
    parity_ok = math.isfinite(parity_delta) and abs(parity_delta) <= config.parity_tolerance
    checks.append(
        GateCheck(
            "onnx_parity",
            parity_ok,
            f"|NME(onnx) - NME(torch)| = {abs(parity_delta):.2e} {'<=' if parity_ok else '>'} "
            f"{config.parity_tolerance:.0e}",
        )
    )
    return GateDecision(candidate_nme=candidate_nme, checks=checks)


def champion_check(
    candidate_nme: float, champion_nme: float | None, tolerance: float, champion_label: str = "champion"
) -> GateCheck:
    """Not worse than the champion (None: there is none yet) by more than `tolerance`: the gate's check, and the
    promotion's when the champion moved after the gate."""
    if champion_nme is None:
        return GateCheck("vs_champion", True, "no champion yet")
    ok = math.isfinite(candidate_nme) and candidate_nme <= champion_nme + tolerance
    return GateCheck(
        "vs_champion",
        ok,
        f"test NME {100 * candidate_nme:.3f}% vs {champion_label} {100 * champion_nme:.3f}% "
        f"(+{100 * tolerance:.3f}% tolerance): {'not worse' if ok else 'worse'}",
    )


def _baseline_check(candidate_nme: float, baseline_nme: float | None, required: float) -> GateCheck:
    if baseline_nme is None or not math.isfinite(baseline_nme):
        return GateCheck("vs_mean_shape", False, "no mean-shape NME to compare with")
    ratio = baseline_nme / candidate_nme if math.isfinite(candidate_nme) and candidate_nme > 0 else 0.0
    ok = ratio >= required
    return GateCheck(
        "vs_mean_shape",
        ok,
        f"mean shape {100 * baseline_nme:.3f}% / test NME {100 * candidate_nme:.3f}% = {ratio:.2f}x "
        f"{'>=' if ok else '<'} {required:.2f}x",
    )
