"""lv_adapter's config: its keys and defaults (:func:`add_lv_adapter_config`, in ``defaults``,
``head_defaults``, ``adapter_defaults``), the checks of a whole config (:func:`validate_config`),
and :func:`build_config`, which every entry point (train_net.py, the tools) builds its config
with, projects' keys included (:func:`register_project_config`)."""
from lv_adapter.config.build import (  # noqa: F401
    SEED_VARIABLE,
    build_config,
    flat_config,
    register_project_config,
)
from lv_adapter.config.defaults import add_lv_adapter_config  # noqa: F401
from lv_adapter.config.validation import validate_config  # noqa: F401
