"""One :class:`DatasetSpec` per benchmark: its factor grid, the image sizes its loader takes, its official files.

Every other module reads the grids from here (the readers, the look-alike renderers, ``latentquant data``), so
each grid is written once. latentquant never downloads anything: `latentquant data where <name>` prints where
the official files come from. Sizes and checksums are given where the dataset authors or TensorFlow Datasets
publish them, else marked unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OfficialFile:
    name: str
    url: str
    size_bytes: int | None = None
    sha256: str | None = None
    note: str = ""


# eq=False: the values are arrays, so equality (and hashing) by value would be ambiguous; a spec is a singleton.
@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """The fixed facts of one dataset.

    Factor k has ``factor_sizes[k]`` classes and class c means the real value ``factor_values[k][c]``; the
    images are indexed row-major over the grid, the last factor fastest. ``title`` is the short name messages
    use, ``heading`` the first line of `latentquant data where`. ``image_sizes`` is the (smallest, largest)
    ``image_size`` the loader accepts (equal: the images are never resized); ``native_size`` the side of the
    official images. ``labels_file`` is the labels' file name in the NVlabs folder layouts (None elsewhere).
    """

    name: str
    title: str
    heading: str
    repository: str
    licence: str
    factor_names: tuple[str, ...]
    factor_values: tuple[np.ndarray, ...]
    native_size: int
    image_sizes: tuple[int, int]
    files: tuple[OfficialFile, ...] = ()
    layout: str = ""
    labels_file: str | None = None
    # Your own data (data=images, data=arrays): the factors are known only once the labels are read, so
    # `model.num_latents` defaults to this instead of twice the number of factors.
    default_latents: int | None = None

    def __post_init__(self) -> None:
        if len(self.factor_names) != len(self.factor_values):
            raise ValueError(f"{self.name}: {len(self.factor_names)} factor names but {len(self.factor_values)} "
                             "value arrays")
        for values in self.factor_values:
            values.flags.writeable = False  # shared by every reader and renderer: a stray write would corrupt all

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.factor_values)

    @property
    def num_images(self) -> int:
        """Images in the full factor grid."""
        return int(np.prod(self.factor_sizes))


def _normalised(*sizes: int) -> tuple[np.ndarray, ...]:
    """The NVlabs label values: factor k's classes spread evenly over [0, 1]."""
    return tuple(np.linspace(0.0, 1.0, m) for m in sizes)


DSPRITES = DatasetSpec(
    name="dsprites",
    title="dSprites",
    heading="dSprites (Matthey et al. 2017)",
    repository="https://github.com/deepmind/dsprites-dataset",
    licence="Apache-2.0",
    # The official file's ``latents_possible_values``; its constant colour factor is dropped (see dsprites.py).
    factor_names=("shape", "scale", "orientation", "posX", "posY"),
    factor_values=(np.array([1.0, 2.0, 3.0]), np.linspace(0.5, 1.0, 6), np.linspace(0.0, 2 * np.pi, 40),
                   np.linspace(0.0, 1.0, 32), np.linspace(0.0, 1.0, 32)),
    native_size=64,
    image_sizes=(64, 64),
    files=(
        OfficialFile("dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5",
                     "https://github.com/deepmind/dsprites-dataset/raw/master/"
                     "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5",
                     28_024_106, "729fa22e884c9c500e1f17415d580746b4c5894fbbb780a1319bbcfa39a745bb"),
        OfficialFile("dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                     "https://github.com/deepmind/dsprites-dataset/raw/master/"
                     "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                     note="about 26 MB; exact size and checksum not published"),
    ),
    layout="one file; keys imgs (N,64,64) uint8 0/1, latents_classes, latents_values (the constant color "
    "factor is dropped)",
)

SHAPES3D = DatasetSpec(
    name="shapes3d",
    title="3D Shapes",
    heading="3D Shapes (Kim & Mnih 2018)",
    repository="https://github.com/deepmind/3d-shapes",
    licence="Apache-2.0",
    factor_names=("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
    # The stored values (several independent loaders agree; the official README's ranges are not what the
    # file holds): hues 0.0..0.9, scale 0.75..1.25, shape 0..3 (cube, cylinder, sphere, capsule), and
    # orientation -30..30 degrees of camera azimuth.
    factor_values=(np.linspace(0.0, 0.9, 10), np.linspace(0.0, 0.9, 10), np.linspace(0.0, 0.9, 10),
                   np.linspace(0.75, 1.25, 8), np.array([0.0, 1.0, 2.0, 3.0]), np.linspace(-30.0, 30.0, 15)),
    native_size=64,
    image_sizes=(8, 512),
    files=(OfficialFile("3dshapes.h5", "https://storage.googleapis.com/3d-shapes/3dshapes.h5",
                        267_573_662, "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785"),),
    layout="one HDF5 file; datasets images (480000,64,64,3) uint8 and labels (480000,6) float64 values",
)

# The 6x6 grid of toy / realistic / real; real-complex and the challenge-era files use 4 colours and 4 shapes
# (mpi3d.GRIDS). The files hold no labels, so a factor's value is its class index.
MPI3D = DatasetSpec(
    name="mpi3d",
    title="MPI3D",
    heading="MPI3D (Gondal et al. 2019): toy, realistic, real, real-complex",
    repository="https://github.com/rr-learning/disentanglement_dataset",
    licence="CC-BY-4.0",
    factor_names=("object_color", "object_shape", "object_size", "camera_height", "background_color",
                  "horizontal_axis", "vertical_axis"),
    factor_values=tuple(np.arange(m, dtype=np.float64) for m in (6, 6, 2, 3, 3, 40, 40)),
    native_size=64,
    image_sizes=(16, 256),
    files=tuple(
        OfficialFile(f"{v}.npz", f"https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/{v}.npz",
                     note="size not published (about 12.7 GB decoded)")
        for v in ("mpi3d_toy", "mpi3d_realistic", "mpi3d_real")
    ) + (OfficialFile("real3d_complicated_shapes_ordered.npz",
                      "https://drive.google.com/uc?id=1Tp8eTdHxgUMtsZv5uAoYAbJR1BOa_OQm",
                      note="real-complex, 4x4 colours and shapes, 460,800 images; size not published"),),
    layout="one .npz with key images (N,64,64,3) uint8; labels are the row-major grid index. Copies of "
    "real.npz from the older storage link may be corrupted",
)

FALCOR3D = DatasetSpec(
    name="falcor3d",
    title="Falcor3D",
    heading="Falcor3D (Nie et al. 2020)",
    repository="https://github.com/NVlabs/High-res-disentanglement-datasets",
    licence="CC-BY-4.0",
    factor_names=("lighting_intensity", "lighting_x", "lighting_y", "lighting_z", "camera_x", "camera_y",
                  "camera_z"),
    factor_values=_normalised(5, 6, 6, 6, 6, 6, 6),
    native_size=128,
    image_sizes=(8, 512),
    files=(OfficialFile("Falcor3D_128x128 archive", "https://drive.google.com/uc?id=1XAQfFK1x6cpN1eiovbP0hVfLTm5SsSoJ",
                        note="3.7 GB; checksum not published"),),
    layout="folder Falcor3D_down128/ with images/%06d.png (128x128 RGB) and train-rec.labels (a .npy file)",
    labels_file="train-rec.labels",
)

# Column order of the official demo script (the README's prose order disagrees with its own index formula;
# these sizes are the only ones that reproduce the formula's multipliers).
ISAAC3D = DatasetSpec(
    name="isaac3d",
    title="Isaac3D",
    heading="Isaac3D (Nie et al. 2020)",
    repository="https://github.com/NVlabs/High-res-disentanglement-datasets",
    licence="CC-BY-4.0",
    factor_names=("object_shape", "robot_x", "robot_y", "camera_height", "object_scale", "lighting_intensity",
                  "lighting_y", "object_color", "wall_color"),
    factor_values=_normalised(3, 8, 5, 4, 4, 4, 6, 4, 4),
    native_size=128,
    image_sizes=(8, 512),
    files=(OfficialFile("Isaac3D_128x128 archive", "https://drive.google.com/uc?id=1OmQ1G2wnm6eTsSFGTKFZZAh5D3nQTW1B",
                        note="13 GB; checksum not published"),),
    layout="folder Isaac3D_down128/ with images/%06d.png (128x128 RGB) and labels.npy",
    labels_file="labels.npy",
)

# Your own data: no fixed grid, no official files; docs/your-data.md has the formats.
def _own_data(name: str, title: str, layout: str, labels_file: str | None = None) -> DatasetSpec:
    return DatasetSpec(name=name, title=title, heading=f"your own {title.split()[-1]} of images (docs/your-data.md)",
                       repository="", licence="yours", factor_names=(), factor_values=(), native_size=0,
                       image_sizes=(4, 1024), layout=layout, labels_file=labels_file, default_latents=10)


IMAGES = _own_data(
    "images", "image folder",
    "a folder tree of PNG, JPEG or WebP files of any size and mode, optionally factors.csv (a 'file' column "
    "naming each image relative to the folder, one column per factor)",
    labels_file="factors.csv",
)
ARRAYS = _own_data(
    "arrays", "image array",
    "a .npz or HDF5 file with images (N, H, W[, C]) under data.key (uint8, or float in [0, 1]), or a .npy; "
    "optionally labels (N, K) under data.factors_key, or a CSV with one row per image (data.labels)",
)

CATALOG: dict[str, DatasetSpec] = {spec.name: spec for spec in (DSPRITES, SHAPES3D, MPI3D, FALCOR3D, ISAAC3D, IMAGES,
                                                               ARRAYS)}
USER_DATA = frozenset(name for name, spec in CATALOG.items() if spec.default_latents is not None)


def describe(name: str) -> str:
    """The text `latentquant data where <name>` prints."""
    spec = CATALOG[name]
    if name in USER_DATA:
        return (f"{spec.heading}\n  layout:     {spec.layout}\n  train with `latentquant train data={name} "
                "data.path=<path>`; nothing to download")
    grid = ", ".join(f"{n} {s}" for n, s in zip(spec.factor_names, spec.factor_sizes, strict=True))
    lines = [f"{spec.heading}", f"  repository: {spec.repository}  (licence {spec.licence})",
             f"  layout:     {spec.layout}", f"  factors:    {grid}"]
    for f in spec.files:
        lines.append(f"  file:       {f.name}")
        lines.append(f"    source:   {f.url}")
        lines.append(f"    size:     {f'{f.size_bytes:,} bytes' if f.size_bytes else 'unknown'}")
        lines.append(f"    sha256:   {f.sha256 or 'unknown'}")
        if f.note:
            lines.append(f"    note:     {f.note}")
    lines.append("  latentquant does not download it: fetch it yourself, then "
                 f"`latentquant data check <path>` and `latentquant train data={name} data.path=<path>`.")
    return "\n".join(lines)
