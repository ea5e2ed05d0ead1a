from kdp_beam.cli import run

run()
