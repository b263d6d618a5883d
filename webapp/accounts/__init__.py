"""Accounts: signing in and out; teams, tokens and sign-up build on this app."""
