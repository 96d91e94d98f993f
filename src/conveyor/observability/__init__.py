"""Operating conveyor: metrics read from the durable stores (cluster.py) and the HTTP server
every Prometheus endpoint of conveyor shares (serving.py). A worker's own metrics live beside
the worker (worker/metrics.py)."""
