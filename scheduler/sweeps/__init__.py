"""Controlled sweeps: the scheduler makes each trial (a run) as a slot frees and stops weak ones early.

`study` turns a sweep's trials into an in-memory Optuna study and back (the search and pruning
mathematics are Optuna's); `policy` decides a tick's work from plain records (pure, unit-tested), with
`promotion` for ASHA's promotion variant (pause at a rung, promote the top 1/eta: Optuna has none);
`controller` reads the database, applies the plan, and is called from the scheduler's tick.
"""
