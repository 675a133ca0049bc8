"""IKEv1 exchanges as tasks: Phase 1 (Main, Aggressive), Quick Mode and Informational."""
