"""The example services. Each owns one PostgreSQL database: its tables, its outbox, its migrations."""
