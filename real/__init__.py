"""Robot side: robot interface, safety, adaptation, data collection (to come)."""
