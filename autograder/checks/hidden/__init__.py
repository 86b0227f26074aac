"""Hidden checks, one module per part: never in the student handout, never visible to the worker."""
