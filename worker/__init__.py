"""The outbox worker: fans domain events out to consumers and delivers them at least once; runs the periodic jobs.

`klubb worker` runs `worker.runner.run_forever` (production, any number of processes); the API process runs
`worker.runner.run_embedded` in its lifespan when `KLUBB_EMBEDDED_WORKER` is true (the SQLite default). Both are
given a `worker.config.WorkerConfig`: the worker imports only `loyalty`.
"""
