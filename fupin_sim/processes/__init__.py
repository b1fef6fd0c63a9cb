"""The yearly processes. Each is a function `step(state, p, rs, year) -> dict` that updates
the state in place, vectorised over all households and persons, and returns the year's
counts it alone knows (deaths, births, medical costs by payer, ...)."""
