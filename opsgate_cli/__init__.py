"""`opsgate`: the command line for operators. It talks to the opsgate API over
HTTP (httpx) and imports nothing of the server."""
