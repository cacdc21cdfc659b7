"""``rol-hashing describe``: prints a model's layers and shapes (placeholder until models land)."""
