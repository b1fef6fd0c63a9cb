"""Parameter sweeps: many runs of one scenario over a design of parameter values, through the
executor (joblib's loky on one machine, or a Dask cluster), each written as it finishes,
resumable, with a progress bar. `spec`: what a sweep spec holds; `runs`: running it."""
from fupin_sim.experiments.sweep.runs import RunTask, SweepResult, run_sweep, sweep_tasks
from fupin_sim.experiments.sweep.spec import SweepSpec, load_spec

__all__ = ["RunTask", "SweepResult", "SweepSpec", "load_spec", "run_sweep", "sweep_tasks"]
