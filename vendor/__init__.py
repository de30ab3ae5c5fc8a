"""Third-party front-end builds (htmx, Swagger UI), shipped exactly as published.

They live outside ``src/`` because they are not our code: each folder has its upstream licence
and a note of its version, source and checksums, and the site serves them under
``/static/vendor/``.
"""
