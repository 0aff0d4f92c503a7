"""The shortener service: short links and the clicks on them, in its own database."""
