"""The origin's side of packaging: receiving uploads, and the jobs that package them
(in process, `[jobs] backend = "local"`, or on the queue, `"redis"`)."""
