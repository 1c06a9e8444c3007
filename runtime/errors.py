"""Exceptions whose message is a complete one-line explanation for the user.

The CLI prints `str(error)` and exits non-zero; anything that is not an `EdgeftError`
is a bug and keeps its traceback.
"""


class EdgeftError(Exception):
    """Base class: the message alone must tell the user what went wrong and what to do."""


class BundleError(EdgeftError):
    """A bundle folder, manifest or model file is missing, malformed or tampered with."""


class FrameError(EdgeftError):
    """A frame cannot be turned into the model's input."""


class ProviderError(EdgeftError):
    """The requested onnxruntime execution provider cannot run here."""
