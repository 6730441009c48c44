"""What the origin tells its operators: the access log, Prometheus metrics, and the
sharing of metrics between the workers of one origin."""
