"""Reading node GPU and memory metrics from Prometheus (never exposing our own metrics)."""
