"""One module per use case; callers import the module they need:
accounts, people, projects, roles, access_requests (which also offers what
request_decisions and request_ending hold), lifecycle. Every write
runs in one transaction, writes its audit row and asks for AWS work through
accounts_app.sync_requests after commit."""
