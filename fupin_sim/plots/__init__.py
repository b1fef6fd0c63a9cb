"""Figures (matplotlib) for notebooks and reports: each function takes the tables a result
folder holds and returns a Figure, with labels in English or Chinese (`lang="zh"`).

    from fupin_sim import plots
    fig = plots.trajectory(pd.read_csv("runs/baseline/summary.csv"), lang="zh")
"""
from fupin_sim.plots.calibration import calibration_draws, calibration_fit
from fupin_sim.plots.experiments import comparison, cost_effectiveness, frontier, response_surface, sensitivity, \
    sweep_response
from fupin_sim.plots.risk import reliability, risk_distribution, roc_curve
from fupin_sim.plots.runs import spending, trajectory
from fupin_sim.plots.style import FontWarning, cjk_font, number, plt
from fupin_sim.plots.text import LANGUAGES, label, text

__all__ = ["FontWarning", "LANGUAGES", "calibration_draws", "calibration_fit", "cjk_font", "comparison", "cost_effectiveness", "frontier",
           "label", "number", "plt", "reliability", "response_surface", "risk_distribution", "roc_curve",
           "sensitivity", "spending", "sweep_response", "text", "trajectory"]
