"""Who hears about runs: the run-status sensors (`sensors`) and the messages they send (`messages`)."""
