"""unetweights: U-Net weight maps, weight-map aware losses, and exported evaluation graphs."""

from . import weightmaps
from .weightmaps import *  # noqa: F401,F403  (the public names are listed in weightmaps.__all__)

__version__ = "0.1.0"

__all__ = [*weightmaps.__all__]
