"""The line a local run starts with when its bfloat16 models will train in float32."""

import pytest
import torch

from landmarkflow.pipeline_summary import float32_notice

TINY = [f"configs/{model}_synthetic_tiny.yaml" for model in ("dsat", "rdfn", "hih", "lgcn")]


def test_a_cpu_without_bfloat16_names_the_models_it_slows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    notice = float32_notice(TINY)
    assert notice is not None
    assert notice.startswith("This CPU has no native bfloat16: RDFN, HIH, LGCN (train.amp) train in float32")
    assert "DSAT" not in notice  # its config trains in float32 everywhere: nothing changes for it
    assert float32_notice(["configs/hih_synthetic_tiny.yaml"]).startswith(
        "This CPU has no native bfloat16: HIH (train.amp) trains in float32"
    )


def test_no_notice_where_bfloat16_is_native_or_no_model_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert float32_notice(TINY) is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert float32_notice(["configs/dsat_synthetic_tiny.yaml"]) is None
