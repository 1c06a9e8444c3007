"""Where dataset files live: a local path, or a URI of object storage (`s3://bucket/drive/`,
`gs://...`, any fsspec protocol) read through universal-pathlib (the `cloud` extra).

A URI becomes a `UPath`, which walks, lists and reads like `pathlib.Path`, so planning a dataset
and reading its frames is the same code for both. Each machine reads with its own credentials
(environment, `~/.aws`, an instance role), as its fsspec back end (s3fs, gcsfs) finds them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..errors import first_line
from .base import SourceError

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
QUIET_LOGGERS = ("botocore", "aiobotocore", "s3fs", "fsspec", "urllib3", "gcsfs", "adlfs")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


def is_uri(text: str) -> bool:
    """`s3://bucket/key` and the like: object storage, not a local path and not a video stream."""
    return bool(_URI.match(text)) and not text.startswith(STREAM_SCHEMES)


def location(text: str) -> Path:
    """A local `Path`, or a `UPath` for a URI; a protocol nothing here can read is one line."""
    if not is_uri(text):
        return Path(text)
    try:
        from upath import UPath
    except ImportError:
        raise SourceError(f"reading '{text}' needs the cloud extra: pip install 'edgeft[cloud]'") from None
    for name in QUIET_LOGGERS:  # each retry and credential lookup logged; what fails reaches the user as one line
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return UPath(text)
    except (ImportError, ValueError) as exc:  # fsspec: no back end installed (or known) for the protocol
        raise SourceError(f"cannot read '{text}': {first_line(exc)}") from None


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes; None when it is not there. Any other failure of object storage (no
    credentials, access denied, the service down) is a SourceError: it is not an unreadable frame."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    except Exception as exc:  # noqa: BLE001 - local OSErrors, and each back end's own exception types
        if isinstance(path, Path):
            return None
        raise SourceError(f"cannot read '{path}': {first_line(exc)}") from None
