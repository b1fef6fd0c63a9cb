"""Published figures the scorecard checks the model against (history.csv)."""
