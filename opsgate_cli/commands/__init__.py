"""The CLI's commands by group; opsgate_cli.main registers them."""
