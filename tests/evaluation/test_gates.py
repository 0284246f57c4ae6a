import math

from landmarkflow.config import GateConfig
from landmarkflow.evaluation.gates import decide

GATES = GateConfig(max_nme=0.05, champion_tolerance=0.001, parity_tolerance=1e-4)


def test_first_good_model_passes_every_gate() -> None:
    decision = decide(0.03, 2e-5, GATES, champion_nme=None)
    assert decision.passed
    assert decision.reasons() == "all gates passed"


def test_threshold_champion_and_parity_each_fail_with_a_reason() -> None:
    too_high = decide(0.06, 0.0, GATES, None)
    assert not too_high.passed and "6.000% >= threshold 5.000%" in too_high.reasons()
    worse = decide(0.04, 0.0, GATES, champion_nme=0.03, champion_label="champion v3")
    assert not worse.passed and "vs champion v3 3.000%" in worse.reasons() and "worse" in worse.reasons()
    drift = decide(0.03, 5e-4, GATES, None)
    assert not drift.passed and [c.name for c in drift.checks if not c.passed] == ["onnx_parity"]


def test_within_tolerance_of_champion_passes_and_nan_fails() -> None:
    assert decide(0.0305, 0.0, GATES, champion_nme=0.03).passed
    nan = decide(math.nan, 0.0, GATES, None)
    assert not nan.passed
    assert nan.to_dict()["passed"] is False


def test_mean_shape_ratio_gate_when_the_config_asks_for_it() -> None:
    gates = GATES.model_copy(update={"min_baseline_ratio": 3.0})
    good = decide(0.03, 0.0, gates, None, baseline_nme=0.0931)
    assert good.passed and "mean shape 9.310% / test NME 3.000% = 3.10x >= 3.00x" in good.checks[1].detail
    short = decide(0.04, 0.0, gates, None, baseline_nme=0.10)
    assert not short.passed and short.reasons() == "mean shape 10.000% / test NME 4.000% = 2.50x < 3.00x"
    assert not decide(0.03, 0.0, gates, None).passed
    assert [c.name for c in decide(0.03, 0.0, GATES, None).checks] == ["nme_threshold", "vs_champion", "onnx_parity"]


def test_real_face_gate_applies_only_when_configured_and_measured() -> None:
    gates = GATES.model_copy(update={"max_real_nme": 0.12})
    good = decide(0.03, 0.0, gates, None, real_nme=0.11)
    assert good.passed and "real-face NME 11.000% < threshold 12.000%" in good.checks[1].detail
    far = decide(0.03, 0.0, gates, None, real_nme=0.2)
    assert not far.passed and far.reasons() == "real-face NME 20.000% >= threshold 12.000%"
    assert not decide(0.03, 0.0, gates, None, real_nme=math.nan).passed
    unmeasured, unconfigured = decide(0.03, 0.0, gates, None), decide(0.03, 0.0, GATES, None, real_nme=0.5)
    for decision in (unmeasured, unconfigured):
        assert decision.passed and [c.name for c in decision.checks] == ["nme_threshold", "vs_champion", "onnx_parity"]
