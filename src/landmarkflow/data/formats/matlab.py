"""MATLAB .mat files, v5 and v7.3 (HDF5), as the benchmark files ship them: read and write variables.

Values come back as MATLAB shows them (`MatValue`): numeric arrays in MATLAB's orientation, char arrays as str,
cell arrays as lists in MATLAB's column-major order. Writers are atomic; v5 files are byte-reproducible, because
equal data must give equal bytes (the dataset's DVC hash depends on it).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.fileio import atomic_path, atomic_write_bytes

MAT_VERSIONS = ("5", "7.3")
# MATLAB ignores the 116-byte text header; scipy stamps the time into it, which breaks byte-identical output.
MAT5_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: landmarkflow".ljust(116)
# MATLAB reads a v7.3 file (HDF5) only with this 128-byte header in a 512-byte user block.
MAT73_HEADER = (
    b"MATLAB 7.3 MAT-file, Platform: posix, Created by: landmarkflow HDF5 schema 1.00 .".ljust(116)
    + bytes(8)
    + b"\x00\x02IM"
)

MatValue = np.ndarray | str | list  # numeric array, char array, or cell array (a list of MatValues)


# ------------------------------------------------------------------------------------------------ reading


def read_mat(path: str | Path, names: Sequence[str], optional: Sequence[str] = ()) -> dict[str, MatValue]:
    """Variables `names` of a v5 or v7.3 .mat file as MATLAB shows them: arrays in MATLAB's orientation, cell
    arrays as lists in MATLAB's (column-major) order, char arrays as str. A missing variable is an error, except
    the `optional` ones, which are returned only where present."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, f"does not exist; expected a .mat file with {', '.join(names)}")
    wanted = [*names, *optional]
    values, found = _read_mat73(path, wanted) if h5py.is_hdf5(path) else _read_mat5(path, wanted)
    missing = [name for name in names if name not in values]
    if missing:
        raise FormatError(path, f"expected variables {', '.join(names)}; {', '.join(missing)} missing (found {found})")
    return values


def _read_mat5(path: Path, names: Sequence[str]) -> tuple[dict[str, MatValue], list[str]]:
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError or MatReadError on damaged files
        raise FormatError(path, f"not a readable MATLAB v5 or v7.3 .mat file ({exc})") from None
    found = sorted(k for k in mat if not k.startswith("__"))
    return {name: _from_mat5(path, name, mat[name]) for name in names if name in mat}, found


def _from_mat5(path: Path, name: str, value: np.ndarray) -> MatValue:
    if value.dtype == object:
        return [_from_mat5(path, f"{name}[{i}]", v) for i, v in enumerate(value.ravel(order="F"))]
    if value.dtype.kind == "U":
        return "".join(value.ravel(order="F").tolist())
    if value.dtype.names is not None:
        raise FormatError(path, f"{name} is a MATLAB struct; expected a numeric, char or cell array")
    return value


def _read_mat73(path: Path, names: Sequence[str]) -> tuple[dict[str, MatValue], list[str]]:
    try:
        with h5py.File(path, "r") as f:
            found = sorted(k for k in f if not k.startswith("#"))
            return {name: _from_h5(path, name, f, f[name]) for name in names if name in f}, found
    except OSError as exc:
        raise FormatError(path, f"not a readable MATLAB v7.3 (HDF5) .mat file ({exc})") from None


def _from_h5(path: Path, name: str, f: h5py.File, node: h5py.Dataset | h5py.Group) -> MatValue:
    """One MATLAB value from HDF5, where MATLAB stores every array with its dimensions reversed."""
    if not isinstance(node, h5py.Dataset):
        raise FormatError(path, f"{name} is a MATLAB struct or object; expected a numeric, char or cell array")
    kind = node.attrs.get("MATLAB_class", b"")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if node.attrs.get("MATLAB_empty", 0):
        return [] if kind == "cell" else np.zeros((0, 0))
    if kind == "cell":
        return [_from_h5(path, f"{name}[{i}]", f, f[ref]) for i, ref in enumerate(node[()].ravel())]
    data = np.transpose(node[()])
    if kind == "char":
        return "".join(chr(code) for code in data.ravel(order="F"))
    return data


# ------------------------------------------------------------------------------------------------ checking


def numeric(path: Path, name: str, value: MatValue, columns: int) -> np.ndarray:
    """A variable that must be an N×`columns` numeric matrix, as float64."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf" or value.ndim != 2:
        kind = type(value).__name__ if not isinstance(value, np.ndarray) else f"{value.dtype} {value.shape}"
        raise FormatError(path, f"{name} is {kind}; expected a numeric N×{columns} matrix")
    if value.shape[1] != columns:
        raise FormatError(path, f"{name} has shape {value.shape}; expected N×{columns}")
    return value.astype(np.float64)


def check_row(path: Path, name: str, row: np.ndarray) -> None:
    """Refuse NaN or inf in one row of a numeric variable."""
    bad = np.flatnonzero(~np.isfinite(row))
    if bad.size:
        raise FormatError(path, f"{name}: column {bad[0]} is {row[bad[0]]}; expected finite numbers", check="no_nan")


# ------------------------------------------------------------------------------------------------ writing


def write_mat(path: str | Path, variables: Mapping[str, MatValue], version: str = "5") -> Path:
    """Write variables (as `read_mat` returns them; lists become N×1 cell arrays) as a v5 or v7.3 .mat file,
    atomically. v5 files are byte-reproducible."""
    path = Path(path)
    if version == "5":
        save_mat_v5(path, {k: _to_mat5(v) for k, v in variables.items()})
    elif version == "7.3":
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w", userblock_size=512) as f:
                for name, value in variables.items():
                    _to_h5(f, f, name, value)
            with tmp.open("r+b") as raw:
                raw.write(MAT73_HEADER)
    else:
        raise ValueError(f"MATLAB file version {version!r}: expected one of {MAT_VERSIONS}")
    return path


def save_mat_v5(path: Path, variables: Mapping[str, Any]) -> None:
    """Write scipy-ready values (structs and object arrays included) as a MATLAB v5 file, atomically, with a fixed
    header so that equal data gives equal bytes."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, dict(variables), do_compression=False)
    atomic_write_bytes(path, MAT5_HEADER + buffer.getvalue()[len(MAT5_HEADER) :])


def _to_mat5(value: MatValue) -> object:
    if isinstance(value, list):
        cells = np.empty((len(value), 1), dtype=object)
        for i, item in enumerate(value):
            cells[i, 0] = _to_mat5(item)
        return cells
    return value


_MATLAB_CLASS = {"float64": "double", "float32": "single", "bool": "logical"}


def _to_h5(f: h5py.File, group: h5py.Group, name: str, value: MatValue) -> h5py.Dataset:
    """Store one value the way MATLAB does: dimensions reversed, cells as references into `#refs#`."""
    if isinstance(value, list):
        refs = f.require_group("#refs#")
        items = [_to_h5(f, refs, f"{name}_{i}", item) for i, item in enumerate(value)]
        if not items:
            node = group.create_dataset(name, data=np.zeros(2, dtype=np.uint64))
            node.attrs["MATLAB_empty"] = np.uint8(1)
        else:
            node = group.create_dataset(name, data=np.array([[d.ref for d in items]], dtype=h5py.ref_dtype))
        node.attrs["MATLAB_class"] = np.bytes_("cell")
        return node
    if isinstance(value, str):
        node = group.create_dataset(name, data=np.array([[ord(c)] for c in value], dtype=np.uint16))
        node.attrs["MATLAB_class"] = np.bytes_("char")
        node.attrs["MATLAB_int_decode"] = np.int32(2)
        return node
    array = np.atleast_2d(np.asarray(value))
    node = group.create_dataset(
        name, data=np.ascontiguousarray(np.transpose(array)).astype(np.uint8 if array.dtype == bool else array.dtype)
    )
    node.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASS.get(array.dtype.name, array.dtype.name))
    return node
