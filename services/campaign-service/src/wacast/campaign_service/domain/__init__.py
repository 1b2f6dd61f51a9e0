"""The rules of leads and campaigns: pure functions of state and command, no I/O."""
