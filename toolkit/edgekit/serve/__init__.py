"""`edgekit serve`: the artifact a run's deploy decision chose, behind an HTTP API (FastAPI on uvicorn)."""
