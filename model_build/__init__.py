"""woundcare ML core: contract, validation, derivation, synthesis, models. Never imports boto3."""
