"""Ground-truth-factor datasets: ``load(name, path=None, **options)`` returns a :class:`GroundTruthData`.

``DATASETS`` names the loaders, ``describe(name)`` says where a dataset's official files come from. The
modules: ``loading`` (load), ``catalog`` (one DatasetSpec per dataset), one reader/writer per official format
(``shapes3d``, ``dsprites``, ``mpi3d``, ``nvlabs``), ``lookalike/`` (the renderers), ``commands``
(`latentquant data`).
"""

from .base import GroundTruthData
from .catalog import describe
from .loading import DATASETS, load

__all__ = ["DATASETS", "GroundTruthData", "describe", "load"]
