"""``strata build``: Docker's classic builder on strata's store, containers and layers.

``api.build`` is the entry point; ``builder``/``dispatch``/``run``/``copysteps`` run the steps,
``context``/``ignore``/``copy``/``scoped`` handle the context and files, ``cache`` the step cache."""

from strata.build.api import BuildResult, build
from strata.build.state import BuildOptions

__all__ = ["BuildOptions", "BuildResult", "build"]
