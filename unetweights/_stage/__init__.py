"""The input stage every loss and metric shares (torch only): option checks (``options``), the one
reduction rule and the NaN poison (``reduce``), and the input stage of every loss and metric on
probabilities (``inputs``: activation, target classes, the per-pixel weight, weighted counts).

A shared helper of the house, like ``_files``: ``losses`` and ``metrics`` import it, and it imports
nothing of the package, so the metrics get the losses' counts and NaN rule without importing a
private name of ``losses``.
"""
