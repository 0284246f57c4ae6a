"""Promote: move `champion` to the new version only when every gate passed."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote(register_result: Input[Artifact], gate_result: Input[Artifact]) -> str:
    """Move the champion alias, or say why it stays.

    Args:
        register_result: Register's result (name, version).
        gate_result: The gate's decision.

    Returns:
        One line saying where `champion` points now and why.
    """
    from landmarkflow import steps
    from landmarkflow.services import start_step

    start_step()
    promoted = steps.promote(steps.RegisterResult.load(register_result.path), steps.GateResult.load(gate_result.path))
    return promoted.message
