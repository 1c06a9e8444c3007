"""Export-stage errors; like every `EdgeftError`, the message is the whole story for the user."""

from edgeft.runtime.errors import EdgeftError


class ExportError(EdgeftError):
    """The export cannot proceed (bad backbone, cut, head, weights, or failed parity)."""
