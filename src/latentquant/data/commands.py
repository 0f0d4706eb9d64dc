"""`latentquant data make | check | where`: write look-alikes, verify files, say where the real ones are."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from ._common import check_image_size, one_line
from .catalog import CATALOG, USER_DATA, describe
from .dsprites import write_dsprites_npz
from .loading import DATASETS, load
from .mpi3d import write_mpi3d_npz
from .nvlabs import write_falcor3d_folder, write_isaac3d_folder
from .own import EXTENSIONS, write_image_folder
from .shapes3d import write_shapes3d_h5

# What `check` verified about the images beyond their shape, where that is more than reading them.
IMAGES_VERIFIED = {name: "; every PNG decoded, now or into a cache built from these exact files"
                   for name in ("falcor3d", "isaac3d")}

# Options that let `check` accept a file at any stored image size.
CHECK_OPTIONS: dict[str, dict] = {"shapes3d": {"image_size": None}, "mpi3d": {"image_size": None},
                                  "images": {"progress": False}}

# name -> writer(out, subset=..., image_size=...) of the look-alike in the official format; image_size is
# already checked by `_make_size`.
WRITERS: dict[str, Callable[..., Path]] = {
    "shapes3d": lambda out, subset, image_size: write_shapes3d_h5(out, image_size=image_size, subset=subset),
    "dsprites": lambda out, subset, image_size: write_dsprites_npz(out, subset=subset),
    "mpi3d": lambda out, subset, image_size: write_mpi3d_npz(out, subset=subset, image_size=image_size),
    # The NVlabs layouts are folders of 128x128 PNGs whatever size training uses: the loader resizes.
    "falcor3d": lambda out, subset, image_size: write_falcor3d_folder(out, subset=subset),
    "isaac3d": lambda out, subset, image_size: write_isaac3d_folder(out, subset=subset),
}
# Formats whose look-alike is written at one size only (the official one), whatever --image-size says.
FIXED_SIZE = {"dsprites", "falcor3d", "isaac3d"}


def _known(name: str, table: dict) -> None:
    if name not in table:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(sorted(table))}")


def where(name: str) -> str:
    _known(name, CATALOG)
    return describe(name)


def _make_size(name: str, image_size: int | None) -> int:
    """The image size to write `name` at; a size the format cannot hold is refused rather than ignored."""
    spec = CATALOG[name]
    if name not in FIXED_SIZE:
        return check_image_size(64 if image_size is None else image_size, spec)
    if image_size is not None and image_size != spec.native_size:
        # Training can still use other sizes: the NVlabs loader resizes, dSprites is area-averaged by a divisor.
        loadable = (spec.image_sizes[0] <= image_size <= spec.image_sizes[1] if name != "dsprites"
                    else 0 < image_size < spec.native_size and spec.native_size % image_size == 0)
        resized = f"; train with data.image_size={image_size}, which resizes them on load" if loadable else ""
        raise UserError(f"--image-size {image_size}: {spec.title} look-alikes are written as the official files "
                        f"are, {spec.native_size}x{spec.native_size}{resized}")
    return spec.native_size


def make(name: str, out: str, *, subset: int | None = None, image_size: int | None = None) -> Path:
    """Write the look-alike of `name` to `out` in the official format (image_size None: its default size)."""
    _known(name, WRITERS)
    size = _make_size(name, image_size)
    target = Path(out).expanduser()
    if os.path.lexists(target):  # a dangling symlink too: replacing it is as surprising as following it
        raise UserError(f"{target} already exists; remove it or choose another --out")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: no folder {target.parent}")
    if subset is not None and subset < 1:
        raise UserError(f"--subset must be at least 1, got {subset}")
    return WRITERS[name](target, subset=subset, image_size=size)


def export(name: str, out: str, *, subset: int | None = None, image_size: int | None = None) -> Path:
    """Write the look-alike of `name` as a folder of PNGs with a factors.csv (the `data=images` layout): the
    starting point of docs/your-data.md's worked example."""
    import shutil
    import tempfile

    _known(name, WRITERS)
    target = Path(out).expanduser()
    if os.path.lexists(target):
        raise UserError(f"{target} already exists; remove it or choose another --out")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: no folder {target.parent}")
    if subset is not None and subset < 1:
        raise UserError(f"--subset must be at least 1, got {subset}")
    size = _make_size(name, image_size)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        source = WRITERS[name](scratch / "lookalike", subset=subset, image_size=size)
        options = CHECK_OPTIONS.get(name, {"image_size": CATALOG[name].native_size})
        return write_image_folder(load(name, str(source), **options), target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def detect(path: Path) -> str:
    """Which dataset a file or folder holds, from its layout (not its name alone)."""
    if path.is_dir():
        # lexists: a labels name that is a FIFO or a broken link still tells the layout; the reader then says
        # what is wrong with it.
        if os.path.lexists(path / "train-rec.labels"):
            return "falcor3d"
        if os.path.lexists(path / "labels.npy"):
            return "isaac3d"
        if os.path.lexists(path / "factors.csv") or any(p.suffix.lower() in EXTENSIONS for p in path.iterdir()):
            return "images"
        raise UserError(f"{path}: a folder, but neither train-rec.labels (Falcor3D) nor labels.npy (Isaac3D) nor "
                        "images (PNG, JPEG, WebP) or a factors.csv is in it")
    if not path.is_file():
        raise UserError(f"no such file or folder: {path}")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                keys = set(h5.keys())
        except OSError as e:
            raise UserError(f"{path}: cannot open as HDF5 (truncated or corrupt): {one_line(e)}") from None
        if "imgs" in keys:
            return "dsprites"
        if {"images", "labels"} <= keys:
            return "shapes3d"
        raise UserError(f"{path}: an HDF5 file with keys {sorted(keys)}; expected images+labels (Shapes3D) "
                        "or imgs (dSprites)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = {os.path.splitext(n)[0] for n in z.namelist()}
        if "imgs" in members:
            return "dsprites"
        if "images" in members:
            return "mpi3d"
        raise UserError(f"{path}: an .npz with arrays {sorted(members)}; expected imgs (dSprites) or images (MPI3D)")
    raise UserError(f"{path}: neither HDF5 nor .npz nor a dataset folder")


def check(path: str, name: str | None = None) -> str:
    """Load `path` with its dataset's loader (which verifies labels against the factor grid) and report."""
    target = Path(path).expanduser()
    name = name or detect(target)
    _known(name, DATASETS)
    data = load(name, str(target), **CHECK_OPTIONS.get(name, {}))
    if name in USER_DATA:
        factors = (", ".join(f"{n} {s}" for n, s in zip(data.factor_names, data.factor_sizes, strict=True))
                   if data.labelled else "none (unlabelled: the supervised metrics will be skipped)")
        return (f"{target}: {name}, N = {len(data):,} images, read as {'x'.join(map(str, data.image_shape))}\n"
                f"  factors: {factors}\n  verification: ok (every image decoded; labels match the images)")
    grid = ", ".join(f"{n} {s}" for n, s in zip(data.factor_names, data.factor_sizes, strict=True))
    full = 1
    for s in data.factor_sizes:
        full *= s
    coverage = "the full grid" if len(data) == full else f"a subset of the {full:,}-image grid"
    return (f"{target}: {name}, N = {len(data):,} images of {'x'.join(map(str, data.image_shape))} "
            f"({coverage})\n  factors: {grid}\n  verification: ok (labels agree with the factor grid"
            f"{IMAGES_VERIFIED.get(name, '')})")
