"""``ladts`` subcommands served by the operator package (looked up by ``ladts_policy.cli``)."""
