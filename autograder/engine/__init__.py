"""The grading engine: load a submission, isolate it in a worker, run checks against it, report."""
