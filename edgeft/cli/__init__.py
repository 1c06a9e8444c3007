"""The `edgeft` command: a thin typer layer over edgeft.export, edgeft.runtime and edgeft.transfer.

One module per command group. TensorFlow is imported only inside the commands that build or
train Keras models; every other command starts in well under a second.
"""

from . import bundles, compare, driving, running, transfer  # noqa: F401 - each registers its commands on `app`
from .common import app

__all__ = ["app"]
