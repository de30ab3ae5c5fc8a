"""The web service: app factory, routes and templates."""
