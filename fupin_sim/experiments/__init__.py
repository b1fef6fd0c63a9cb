"""The experiments: many runs of the engine, each a module. `ensemble` (replicates → bands),
`compare` (paired differences on common random numbers), `sweep` (designs over parameters),
`sensitivity` (Sobol' indices), `calibrate` (fits to observed targets) with `abc` (parameter
draws), `forecast` (per-household risk from a register) and `backtest` (the forecast scored
against monitoring rules). They share one executor (`executor`: local or Dask, resumable),
one parameter range (`ranges`), the designs (`designs`), the seeds (`seeds`), the outputs
(`outputs`), parameter draws (`draws`) and spec reading (`specs`)."""
