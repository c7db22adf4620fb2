"""Message handlers: decode nothing, decide little — each hands its payload to a use case."""
