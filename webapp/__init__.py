"""Kiln's web platform: accounts, projects, runs, dashboards, the REST API and the client."""
