"""What the SQL stores (SQLite, PostgreSQL) share: their plans, upkeep, named queries
and migrations.
"""
