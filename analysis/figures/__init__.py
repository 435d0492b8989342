"""Figures and descriptive tables: ``python -m analysis.figures --exhibits configs/exhibits.yaml --out-dir figures``.

One module per figure family (trajectories, maps, heatmap, event_study, synth, sensitivity), the descriptive
table (descriptives), the house style (style) and province geometry (geo). Plot functions take DataFrames and
return matplotlib Figures; :mod:`analysis.figures.exhibits` maps configs/exhibits.yaml to files.
"""
