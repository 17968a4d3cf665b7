from strata.cli.main import run

run()
