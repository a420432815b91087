"""One run: the orchestrator (:func:`wtc.run.experiment.run`), the final refit, provenance and config checks."""
