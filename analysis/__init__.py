"""Dual-use technology transfer-capability indices for Chinese provinces, 2015–2021.

Pipeline stages (one module each): ``clean`` → ``index`` → ``shocks`` → ``estimate`` → exhibits.
Every path comes from :mod:`analysis.paths`; every province identity from :mod:`analysis.provinces`.
"""

__version__ = "0.1.0"
