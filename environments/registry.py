"""Name -> environment class. Built-ins load lazily; user packages add environments with
``@environments.register("name")`` or the ``omni_rl.environments`` entry-point group (the entry point
names a class, or a module that registers its classes when imported)."""

from __future__ import annotations

from typing import Any

from environments.base import EnvError, Environment
from verifiers.plugins import PluginRegistry

ENTRY_POINT_GROUP = "omni_rl.environments"
_SYNTHETIC = "environments.synthetic_tasks"
_BUILTINS = {
    "mcq": "environments.mcq",
    "math": "environments.math",
    "asr": "environments.asr",
    "gui_grounding": "environments.gui",
    "gui_agent": "environments.gui_agent",
    "doc_qa": "environments.doc_qa",
    "nemo_gym": "environments.nemo_gym",
    "synthetic_image_color": _SYNTHETIC,
    "synthetic_image_shape": _SYNTHETIC,
    "synthetic_audio_beeps": _SYNTHETIC,
    "synthetic_video_direction": _SYNTHETIC,
}
REGISTRY: PluginRegistry[Environment] = PluginRegistry(
    "environment", Environment, _BUILTINS, ENTRY_POINT_GROUP, EnvError
)
register = REGISTRY.register
get_class = REGISTRY.get_class
names = REGISTRY.names


def get(name: str, **options: Any) -> Environment:
    """Build the environment registered as ``name`` (unknown or invalid options are an EnvOptionError)."""
    return REGISTRY.get(name, **options)


def _reload_entry_points() -> None:
    """Read the entry points again (tests; after installing a plug-in in a running process)."""
    REGISTRY.load_entry_points(reload=True)
