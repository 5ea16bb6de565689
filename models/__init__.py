"""Re-scoring models, the model registry and re-scoring jobs."""
