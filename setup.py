"""Package discovery (the rest of the configuration is in ``pyproject.toml``).

Every package under ``darts_timesclip/`` is found in the tree, and the top-level ``adapters/`` folder (with any
sub-packages) is shipped as ``darts_timesclip.adapters``; ``pyproject.toml``'s ``package-dir`` maps the name to the
folder. ``[tool.setuptools.packages.find]`` alone cannot discover a folder under another name.
"""

from setuptools import find_packages, setup

ADAPTERS_DIR = "adapters"
ADAPTERS_PACKAGE = "darts_timesclip.adapters"


def discover_packages() -> list[str]:
    """``darts_timesclip*`` packages, plus ``adapters*`` renamed to ``darts_timesclip.adapters*``."""
    packages = find_packages(include=["darts_timesclip", "darts_timesclip.*"])
    adapters = find_packages(include=[ADAPTERS_DIR, f"{ADAPTERS_DIR}.*"])
    return sorted(packages + [ADAPTERS_PACKAGE + name[len(ADAPTERS_DIR) :] for name in adapters])


setup(packages=discover_packages())
