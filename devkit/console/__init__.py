"""Terminal tools: ``devkit watch`` and the ``devkit demo`` that ``make run`` shows."""
