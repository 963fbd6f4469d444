"""Forms: input shape only. The rules live in the services; their
ValidationErrors come back onto these forms with `base.add_service_errors`.
One module per area, as in portal.views; import from the module."""
