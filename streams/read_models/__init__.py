"""Read models: state folded from topics into Faust tables and flushed to a service's database."""
