"""The demo model MediaSearch ships: weights, configs, vocabulary, calibration, scenes.

Runtime code reads the files here; ``training/`` holds the scripts that made them (training,
calibration and evaluation), which nothing at runtime imports.
"""

from pathlib import Path

# The demo model's measured cut-offs, written by ``training.calibrate`` (see the README).
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
