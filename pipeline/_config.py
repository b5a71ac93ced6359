"""The pipeline's defaults, kept in dask's configuration under ``mosaic:``."""
from __future__ import annotations

from importlib.resources import files
from typing import Any

import dask.config
import yaml

__all__ = ["config_get", "PACKAGE_DEFAULTS"]

PACKAGE_DEFAULTS: dict = yaml.safe_load((files("pipeline") / "mosaic.yaml").read_text())
# update_defaults keeps values already set by the user's config files and environment.
dask.config.update_defaults(PACKAGE_DEFAULTS)


def config_get(key: str) -> Any:
    """The configured value of ``mosaic.<key>``, e.g. ``config_get("make.cols")``."""
    return dask.config.get(f"mosaic.{key}")
