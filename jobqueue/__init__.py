"""Packaging jobs on a real queue: SAQ over Redis (`[jobs] backend = "redis"`).

    origin (sori serve)                          worker (sori worker)
    upload → source into the store            →  SAQ job "package" (jobqueue.task)
             (.uploads/{job}/{file}),            fetch the source, package, publish,
             claim the asset in Redis,           progress and a heartbeat on the job,
             enqueue on SAQ                      remove the source and the claim
    GET /v1/jobs/{id}, SSE ← the job in Redis (jobqueue.base.job_json)

Modules: `base` (the queue, claims, the JOB view, errors), `task` (the job a worker
runs, and the clean-up of a dead attempt), `worker` (the `sori worker` process).
Imports: packager, manifests, storage, settings (never origin or sori).
"""
