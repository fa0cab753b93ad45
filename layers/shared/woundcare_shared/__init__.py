"""Runtime services shared by the Lambdas and the CLI: settings, storage, registry, audit, observability."""
