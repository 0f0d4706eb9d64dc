"""Procedural look-alikes of the benchmarks: pixels only, from factor classes (one module per dataset).

They read the factor grids from ``data/catalog.py`` and nothing else of latentquant.data; the writers of the
official file formats live in the reader modules (``data/shapes3d.py``, ...), which import a renderer only
when asked to write a look-alike, so reading a file never loads this package.
"""
