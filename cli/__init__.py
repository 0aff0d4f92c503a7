"""The operator's CLI (`cdc`): the stack, connectors, workers and observation in one place."""
