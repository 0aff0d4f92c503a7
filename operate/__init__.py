"""What an operator does to the running pipeline: look into dead letters, re-drive or discard them."""
