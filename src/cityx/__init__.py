"""CityXchange: test smart-city AI in a simulated city before it goes live.

The public Python API lives in the subpackages; ``cityx.core`` holds the
contracts every other layer builds on.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cityx")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
