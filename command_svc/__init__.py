"""Write side: the CommandService and the transactional dedup worker."""
