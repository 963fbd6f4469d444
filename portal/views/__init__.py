"""The portal's pages, one module per area: requests (my access, asking,
break-glass), approvals, tokens (and the device login), people, projects (and
their roles), accounts (AWS accounts), dashboard (and drift), audit, reviews
(access reviews), demo (the embedded demo's mail page). `staff` holds what the
admin pages share. Input, permissions and output only: the rules are in
accounts_app.services."""
