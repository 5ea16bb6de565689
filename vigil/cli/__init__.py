"""The ``vigil`` command line (Typer). Domain errors become one clear line here, nowhere else."""
