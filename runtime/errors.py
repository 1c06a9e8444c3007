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


def first_line(exc: BaseException) -> str:
    """What a one-line error can quote of a library's exception: its first line, or its type
    when it says nothing (a multi-line message would break the one-line rule)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def utf8_text(data: bytes, where: object, error: type[EdgeftError], advice: str, bom: bool = False) -> str:
    """`data` decoded as UTF-8 (a leading BOM dropped when `bom`); a byte that is not UTF-8 is an
    `error` naming the line it is on, not a decoding traceback."""
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{where}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8 ({advice})") from None
