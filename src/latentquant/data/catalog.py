"""Where each benchmark's official files come from, so users can fetch and check them themselves.

latentquant never downloads anything: `latentquant data where <name>` prints these facts. Sizes and
checksums are given where the dataset authors or TensorFlow Datasets publish them, else marked unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OfficialFile:
    name: str
    url: str
    size_bytes: int | None = None
    sha256: str | None = None
    note: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    repository: str
    licence: str
    factors: tuple[tuple[str, int], ...]
    files: tuple[OfficialFile, ...] = field(default_factory=tuple)
    layout: str = ""


CATALOG: dict[str, DatasetInfo] = {
    "dsprites": DatasetInfo(
        name="dsprites",
        title="dSprites (Matthey et al. 2017)",
        repository="https://github.com/deepmind/dsprites-dataset",
        licence="Apache-2.0",
        factors=(("shape", 3), ("scale", 6), ("orientation", 40), ("posX", 32), ("posY", 32)),
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
    ),
    "shapes3d": DatasetInfo(
        name="shapes3d",
        title="3D Shapes (Kim & Mnih 2018)",
        repository="https://github.com/deepmind/3d-shapes",
        licence="Apache-2.0",
        factors=(("floor_hue", 10), ("wall_hue", 10), ("object_hue", 10), ("scale", 8), ("shape", 4),
                 ("orientation", 15)),
        files=(OfficialFile("3dshapes.h5", "https://storage.googleapis.com/3d-shapes/3dshapes.h5",
                            267_573_662, "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785"),),
        layout="one HDF5 file; datasets images (480000,64,64,3) uint8 and labels (480000,6) float64 values",
    ),
    "mpi3d": DatasetInfo(
        name="mpi3d",
        title="MPI3D (Gondal et al. 2019): toy, realistic, real, real-complex",
        repository="https://github.com/rr-learning/disentanglement_dataset",
        licence="CC-BY-4.0",
        factors=(("object_color", 6), ("object_shape", 6), ("object_size", 2), ("camera_height", 3),
                 ("background_color", 3), ("horizontal_axis", 40), ("vertical_axis", 40)),
        files=tuple(
            OfficialFile(f"{v}.npz", f"https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/{v}.npz",
                         note="size not published (about 12.7 GB decoded)")
            for v in ("mpi3d_toy", "mpi3d_realistic", "mpi3d_real")
        ) + (OfficialFile("real3d_complicated_shapes_ordered.npz",
                          "https://drive.google.com/uc?id=1Tp8eTdHxgUMtsZv5uAoYAbJR1BOa_OQm",
                          note="real-complex, 4x4 colours and shapes, 460,800 images; size not published"),),
        layout="one .npz with key images (N,64,64,3) uint8; labels are the row-major grid index. Copies of "
        "real.npz from the older storage link may be corrupted",
    ),
    "falcor3d": DatasetInfo(
        name="falcor3d",
        title="Falcor3D (Nie et al. 2020)",
        repository="https://github.com/NVlabs/High-res-disentanglement-datasets",
        licence="CC-BY-4.0",
        factors=(("lighting_intensity", 5), ("lighting_x", 6), ("lighting_y", 6), ("lighting_z", 6),
                 ("camera_x", 6), ("camera_y", 6), ("camera_z", 6)),
        files=(OfficialFile("Falcor3D_128x128 archive", "https://drive.google.com/uc?id=1XAQfFK1x6cpN1eiovbP0hVfLTm5SsSoJ",
                            note="3.7 GB; checksum not published"),),
        layout="folder Falcor3D_down128/ with images/%06d.png (128x128 RGB) and train-rec.labels (a .npy file)",
    ),
    "isaac3d": DatasetInfo(
        name="isaac3d",
        title="Isaac3D (Nie et al. 2020)",
        repository="https://github.com/NVlabs/High-res-disentanglement-datasets",
        licence="CC-BY-4.0",
        factors=(("object_shape", 3), ("robot_x", 8), ("robot_y", 5), ("camera_height", 4), ("object_scale", 4),
                 ("lighting_intensity", 4), ("lighting_y", 6), ("object_color", 4), ("wall_color", 4)),
        files=(OfficialFile("Isaac3D_128x128 archive", "https://drive.google.com/uc?id=1OmQ1G2wnm6eTsSFGTKFZZAh5D3nQTW1B",
                            note="13 GB; checksum not published"),),
        layout="folder Isaac3D_down128/ with images/%06d.png (128x128 RGB) and labels.npy",
    ),
}


def describe(name: str) -> str:
    """The text `latentquant data where <name>` prints."""
    info = CATALOG[name]
    lines = [f"{info.title}", f"  repository: {info.repository}  (licence {info.licence})",
             f"  layout:     {info.layout}",
             "  factors:    " + ", ".join(f"{n} {s}" for n, s in info.factors)]
    for f in info.files:
        lines.append(f"  file:       {f.name}")
        lines.append(f"    source:   {f.url}")
        lines.append(f"    size:     {f'{f.size_bytes:,} bytes' if f.size_bytes else 'unknown'}")
        lines.append(f"    sha256:   {f.sha256 or 'unknown'}")
        if f.note:
            lines.append(f"    note:     {f.note}")
    lines.append("  latentquant does not download it: fetch it yourself, then "
                 f"`latentquant data check <path>` and `latentquant train data={name} data.path=<path>`.")
    return "\n".join(lines)
