"""What the app may read when people on other machines can reach it: the address policy and the
data roots that typed folder paths must lie under.

Operator settings, read from the environment when asked (never from a page):
    CONVNET_ALLOW_REMOTE=1         serve on a non-loopback address (off: the app refuses to serve)
    CONVNET_DATA_ROOTS=/a:/b       the only folders typed paths may point into (os.pathsep-separated);
                                   required for typed paths once remote use is allowed
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from core.data import DataError

ALLOW_REMOTE_VAR = "CONVNET_ALLOW_REMOTE"
DATA_ROOTS_VAR = "CONVNET_DATA_ROOTS"
_TRUE = {"1", "true", "yes", "on"}


def remote_allowed() -> bool:
    return os.environ.get(ALLOW_REMOTE_VAR, "").strip().lower() in _TRUE


def is_loopback(address: str | None) -> bool:
    """True for addresses only this machine can reach; None or "" means every interface."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[] ")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def bind_refusal(address: str | None) -> str | None:
    """Why the app must not serve on `address`, or None when it may."""
    if is_loopback(address) or remote_allowed():
        return None
    where = f"address {address}" if address else "every network interface"
    return (
        f"This server listens on {where}, so other machines could reach it, and remote use is off. "
        f"Start it with `--server.address 127.0.0.1` (or `make run`), or, to serve a network on "
        f"purpose, set {ALLOW_REMOTE_VAR}=1 and {DATA_ROOTS_VAR} to the folders it may read."
    )


def data_roots() -> list[Path]:
    """The configured data roots, resolved ([] when none are set)."""
    raw = os.environ.get(DATA_ROOTS_VAR, "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def check_typed_path(text: str, remote: bool) -> Path:
    """The path a person typed, once it is allowed; DataError with one line otherwise.

    On a loopback server the user reads their own machine, so any path is fine unless the operator
    set data roots; a server reached from other machines reads only under the data roots."""
    path = Path(text.strip()).expanduser()
    roots = data_roots()
    if not roots and not remote:
        return path
    if not roots:
        raise DataError(
            f"Reading folders on the server is off: the operator has not set {DATA_ROOTS_VAR}. "
            "Upload a zip instead."
        )
    resolved = path.resolve()  # symlinks and .. are followed before the check
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise DataError(
            f"{text.strip()} is outside the folders this server may read ({', '.join(map(str, roots))})."
        )
    return resolved
