"""Read side: the idempotent projector from decisions to the Redis read model."""
