"""The pipeline's defaults, kept in dask's configuration under ``mosaic:``: their only home.

``mosaic.yaml`` beside this module holds the package's defaults; a user's dask
config files and ``DASK_MOSAIC__*`` environment variables override them, and the
API's ``None`` arguments and the command line's absent flags fall back to them.
"""
from __future__ import annotations

from importlib.resources import files
from typing import Any

import dask.config
import yaml

__all__ = ["PACKAGE_DEFAULTS", "config_get", "or_config"]

PACKAGE_DEFAULTS: dict = yaml.safe_load((files("pipeline") / "mosaic.yaml").read_text())
# update_defaults keeps values already set by the user's config files and environment.
dask.config.update_defaults(PACKAGE_DEFAULTS)


def config_get(key: str) -> Any:
    """The configured value of ``mosaic.<key>``, e.g. ``config_get("make.cols")``."""
    return dask.config.get(f"mosaic.{key}")


def or_config(value: Any, key: str) -> Any:
    """``value``, or the configured ``mosaic.<key>`` when it is None."""
    return config_get(key) if value is None else value
