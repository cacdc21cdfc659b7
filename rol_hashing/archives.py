"""Zip archives from elsewhere (``.npz``, ``.keras``): sizes checked before anything inflates.

A zip member declares its uncompressed size, and Python's ``zipfile`` never inflates a
member past it; NumPy allocates what a ``.npy`` header declares. So checking the
declared sizes against limits proportional to the file bounds the memory a reader can
be made to spend, before a byte is inflated:

- members must be stored or deflated (the only methods NumPy and Keras write; others
  inflate without a bound per read), a stored member declares what it occupies, and
  a deflated one no more than deflate's largest ratio (1032:1) allows;
- each member and all members together stay within the caller's limits;
- ``check_npz`` also reads each ``.npy`` header (a few hundred bytes) and refuses a
  declared shape and dtype that need more bytes than the member holds.

Errors are ``InputError``s naming the file, the member, the declared size and the limit.
This module sits at the ``io`` layer: it imports only ``errors``.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from rol_hashing.errors import InputError, one_line

# Deflate's largest possible expansion (258 bytes per 2-bit code, ~1032:1).
DEFLATE_MAX_RATIO = 1032
# NumPy writes npz members stored (np.savez) or deflated (np.savez_compressed); packed
# codes hardly compress, so a real file declares at most a small multiple of its size.
NPZ_MAX_RATIO = 64
NPZ_SLACK = 1 << 20
NPZ_MAX_MEMBERS = 64


def _mib(size: int) -> str:
    return f"{size} bytes ({size / (1 << 20):.1f} MiB)"


def open_archive(path: str | os.PathLike, what: str) -> zipfile.ZipFile:
    """Opens ``path`` as a zip archive; ``InputError`` naming it (as ``what``) when it is
    not one. A missing file stays a ``FileNotFoundError``."""
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise InputError(
            f"{os.fspath(path)}: not a readable {what}, damaged or not a zip archive "
            f"({type(err).__name__}: {one_line(err)})"
        ) from None


def check_members(
    archive: zipfile.ZipFile,
    path: str | os.PathLike,
    total_limit: int,
    member_limits: dict[str, int] | None = None,
    max_members: int | None = None,
) -> list[zipfile.ZipInfo]:
    """Checks every member's declared sizes; returns the members.

    Args:
        archive: the open archive at ``path``.
        total_limit: bytes all members may declare together (uncompressed).
        member_limits: bytes a named member may declare (others: ``total_limit``).
        max_members: most members the archive may hold (None: any number).

    Raises:
        InputError: a member compressed other than stored or deflated, declaring more
            than its compressed bytes can hold or than a limit, or too many members.
    """
    path = os.fspath(path)
    size = Path(path).stat().st_size
    infos = archive.infolist()
    if max_members is not None and len(infos) > max_members:
        raise InputError(f"{path}: holds {len(infos)} zip members, expected at most {max_members}")
    limits = member_limits or {}
    total = 0
    for info in infos:
        name = info.filename
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(
                f"{path}: member {name!r} uses zip compression method {info.compress_type}; "
                "expected stored or deflated"
            )
        if info.compress_size > size:
            raise InputError(
                f"{path}: member {name!r} declares {_mib(info.compress_size)} compressed, "
                f"more than the whole file's {size} bytes (damaged or forged)"
            )
        if info.compress_type == zipfile.ZIP_STORED:
            ceiling = info.compress_size
        else:
            ceiling = DEFLATE_MAX_RATIO * info.compress_size + 1024
        if info.file_size > ceiling:
            raise InputError(
                f"{path}: member {name!r} declares {_mib(info.file_size)} uncompressed from "
                f"{info.compress_size} bytes, more than its compression can give (forged)"
            )
        limit = limits.get(name, total_limit)
        if info.file_size > limit:
            raise InputError(
                f"{path}: member {name!r} declares {_mib(info.file_size)} uncompressed, "
                f"above the limit of {_mib(limit)} (zip bomb?)"
            )
        total += info.file_size
    if total > total_limit:
        raise InputError(
            f"{path}: members declare {_mib(total)} uncompressed in all, above the limit of "
            f"{_mib(total_limit)} for a file of {size} bytes (zip bomb?)"
        )
    return infos


def npz_limit(size: int) -> int:
    """Uncompressed bytes an ``.npz`` of ``size`` bytes may declare in all."""
    return NPZ_MAX_RATIO * size + NPZ_SLACK


def check_npz(path: str | os.PathLike) -> None:
    """Refuses an ``.npz`` whose members or ``.npy`` headers declare more than it can hold.

    Member sizes as ``check_members`` (at most ``npz_limit(file size)`` in all and
    ``NPZ_MAX_MEMBERS`` members); each ``.npy`` header's shape times its dtype's item
    size must fit in the member (object arrays are left to ``np.load``, which refuses
    them without pickle). Reads only the headers.

    Raises:
        FileNotFoundError: ``path`` is missing.
        InputError: anything else wrong, naming the file and the member.
    """
    path = os.fspath(path)
    with open_archive(path, ".npz file") as archive:
        size = Path(path).stat().st_size
        infos = check_members(archive, path, npz_limit(size), max_members=NPZ_MAX_MEMBERS)
        for info in infos:
            if info.filename.endswith(".npy"):
                _check_npy_header(archive, info, path)


def _check_npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> None:
    name = info.filename
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise InputError(
                    f"{path}: member {name!r} is a .npy of version {version}; expected 1.0 or 2.0"
                )
            header = member.tell()
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(
            f"{path}: member {name!r} is not a readable .npy array ({one_line(err)})"
        ) from None
    if dtype.hasobject:
        return  # np.load(allow_pickle=False) refuses it with its own message
    if any(n < 0 for n in shape):
        raise InputError(f"{path}: member {name!r} declares the negative shape {shape}")
    needed = math.prod(shape) * dtype.itemsize
    held = info.file_size - header
    if needed > held:
        raise InputError(
            f"{path}: member {name!r} declares shape {shape} of {dtype}, {_mib(needed)}, "
            f"but holds {max(held, 0)} bytes of data"
        )
