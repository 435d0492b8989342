"""Speed benchmarks (not tests): ``python -m benchmarks [--quick]`` writes benchmarks/results.md.

Modules: :mod:`benchmarks.bench_make` (cold / no-op / one-spec ``make`` on a scratch copy of the repository),
:mod:`benchmarks.bench_inference` (wild bootstrap, randomization inference, synthetic control against reference
packages), :mod:`benchmarks.bench_multiverse` (the multiverse on 1 vs 2 dask workers).
"""
