"""Running a Broadsheet site: the worker's jobs and what an admin is told about them."""
