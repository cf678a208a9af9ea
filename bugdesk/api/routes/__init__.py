"""One module per resource, each with one APIRouter: reports, events, claims, runs, admin, meta."""
