"""Specification curve ("multiverse") on dask.distributed.

Every reasonable index construction × treatment definition × estimator × control set × sample, declared in
configs/multiverse.yaml (:mod:`analysis.multiverse.grid`), fitted as pure tasks on a dask cluster
(:mod:`analysis.multiverse.tasks`, :mod:`analysis.multiverse.runner`), cached per specification by a hash of its
resolved definition, its inputs and the code (:mod:`analysis.multiverse.cache`), and drawn as a specification
curve (:mod:`analysis.multiverse.figure`). CLI: ``python -m analysis.multiverse``.
"""
