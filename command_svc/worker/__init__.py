"""The transactional dedup worker: exactly one counted vote per voter per poll."""
