"""Promote: move `champion` to the new version only when every gate passed."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote(register_result: Input[Artifact], gate_result: Input[Artifact], serve_image: str = "") -> str:
    """Move the champion alias, or say why it stays; with `serve_image`, serve a new champion on the cluster.

    Args:
        register_result: Register's result (name, version).
        gate_result: The gate's decision.
        serve_image: Image of the KServe InferenceService that serves a new champion, in this pod's namespace with
            the services' Secret ("" = no rollout).

    Returns:
        One line saying where `champion` points now and why.
    """
    from landmarkflow import steps
    from landmarkflow.services import secret_name, start_step
    from landmarkflow.serving.kserve import Rollout

    start_step()
    rollout = Rollout(serve_image, secret_name()) if serve_image else None
    registered, gated = steps.RegisterResult.load(register_result.path), steps.GateResult.load(gate_result.path)
    promoted = steps.promote(registered, gated, rollout)
    return promoted.message
