"""Shared runtime of the voting services: configuration, clients, conventions, contracts."""
