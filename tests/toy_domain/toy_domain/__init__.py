"""A toy domain: a catalogue of books replicated to a shelf service, and a two-step lend-book saga."""
