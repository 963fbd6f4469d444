import typer

app = typer.Typer(help="opsgate: ask for AWS operator access from the terminal.")
