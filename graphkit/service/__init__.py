"""`graphkit serve`: the HTTP graph registry and Open Inference Protocol server (issue 7).

Everything under this package may import the `serve` extra (fastapi, uvicorn, sqlalchemy,
alembic, psycopg); nothing outside it does, so core graphkit keeps working without the extra.
"""
