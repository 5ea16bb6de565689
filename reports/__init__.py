"""The committee pack: PDF and HTML renders of the monitors' results."""
