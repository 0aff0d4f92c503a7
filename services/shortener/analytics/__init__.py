"""The analytics service: a read model of the shortener's links and clicks, in its own database."""
