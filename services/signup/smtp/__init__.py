"""A local SMTP sink: keeps every accepted message in a mailbox file, refuses some domains."""
