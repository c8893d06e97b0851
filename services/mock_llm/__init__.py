"""A local OpenAI-compatible chat completions server with scripted behaviour, for tests,
demos and benchmarks that must not depend on a real model. See app.py for the knobs."""
