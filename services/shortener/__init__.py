"""The URL-shortener example domain: short links and their clicks, and an analytics read model."""
