"""HL7 v2 connectors, in layers: transport (MLLP, files) -> parse -> map (profiles) -> store.

PHI is pseudonymised in the map layer, before anything reaches the store.
"""
