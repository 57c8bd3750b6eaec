"""The names an exported evaluation graph shares with the code that runs it.

:func:`~unetweights.export.to_onnx` writes them into the file and
:class:`~unetweights.runtime.OnnxEvaluator` reads them back, so each is defined here once. Plain
constants: importing this module imports nothing else.
"""

from typing import List

# The inputs of an EvaluationGraph, as its forward names them and its exported graphs call them.
LOGITS = "logits"
TARGET = "target"
WEIGHT = "weight"
DISTANCE = "distance"

#: An EvaluationGraph's inputs in the order its forward takes them.
INPUT_NAMES: List[str] = [LOGITS, TARGET, WEIGHT, DISTANCE]

#: The ONNX metadata_props key under which :func:`~unetweights.export.to_onnx` records the one
#: target value, other than a class index, that every part of an exported EvaluationGraph ignores
#: (as a decimal int). :class:`~unetweights.runtime.OnnxEvaluator` reads it to check targets;
#: absent: none is ignored.
IGNORE_INDEX_METADATA = "unetweights.ignore_index"
