"""Alembic migrations for casebot's schema (SQLite and PostgreSQL); run with `casebot db upgrade`.

Must not change a revision once released: a new change of schema is a new revision under versions/.
"""
