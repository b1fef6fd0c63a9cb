"""Calibration by simulated moments: fit chosen parameters of a scenario to observed targets.

`spec`: what a calibration spec holds; `objective`: the simulated moments and the distance;
`trials`: the trial log that makes a calibration resumable; `search`: the optimiser, the
parameter draws and the outputs."""
from fupin_sim.experiments.calibrate.objective import (DERIVED, Evaluator, fit_counts, fit_table, simulate_moments,
                                                       target_z)
from fupin_sim.experiments.calibrate.search import CalibrationResult, calibrate, synthetic_targets
from fupin_sim.experiments.calibrate.spec import CalibrationSpec, load_spec, read_targets

__all__ = ["DERIVED", "CalibrationResult", "CalibrationSpec", "Evaluator", "calibrate", "fit_counts", "fit_table",
           "load_spec", "read_targets", "simulate_moments", "synthetic_targets", "target_z"]
