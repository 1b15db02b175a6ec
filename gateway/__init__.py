"""The HTTP gateway of the read side: the live results page and its JSON/SSE API."""
