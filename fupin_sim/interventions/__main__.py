"""Print the policy menu as Markdown (docs/instruments.md)."""
from fupin_sim.interventions import describe

print(describe())
