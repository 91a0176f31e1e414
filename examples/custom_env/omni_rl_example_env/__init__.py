"""Example omni-rl plug-in: the ``stripes`` environment (are the stripes of an image horizontal or
vertical?) and the ``orientation`` verifier that scores its answers. omni-rl finds both through the
``omni_rl.environments`` and ``omni_rl.verifiers`` entry points declared in pyproject.toml."""

from omni_rl_example_env.env import StripesEnvironment, StripesOptions
from omni_rl_example_env.verifier import OrientationOptions, OrientationVerifier

__all__ = ["OrientationOptions", "OrientationVerifier", "StripesEnvironment", "StripesOptions"]
