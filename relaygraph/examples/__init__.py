"""Example graphs (the demo's, and ready-made graphs for trying the workers)."""
