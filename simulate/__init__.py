"""`supervisor.py simulate`: the real engine in paper mode at accelerated fake time, one run per execution style
on the same seed and price path, and what each style cost (driver.py runs one style, figures.py measures it,
cli.py runs the styles in child processes and prints them)."""
