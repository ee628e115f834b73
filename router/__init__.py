"""The routing engine: agent presence, skills and capacity, sticky owners, least-busy choice, the waiting
queue and reassignment on absence. Front door: `router/engine.py` (`assign()`)."""
