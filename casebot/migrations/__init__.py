"""Alembic migrations for casebot's schema (SQLite and PostgreSQL); run with `casebot db upgrade`."""
