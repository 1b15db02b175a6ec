"""Read side: the QueryService, with live server-streaming results."""
