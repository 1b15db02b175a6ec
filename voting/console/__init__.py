"""Terminal tools: ``voting watch`` and the ``voting demo`` that ``make run`` shows."""
