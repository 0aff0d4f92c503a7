"""The operator's web console (`cdc console`): the data's path hop by hop, dead letters, sagas,
served on 127.0.0.1. Server-rendered pages (aiohttp, which Faust already brings, and Jinja2);
every figure comes from the same code `cdc observe` and `cdc dlq` use."""
