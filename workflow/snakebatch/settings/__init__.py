"""Settings: the config validated and derived into one spec per stage, the plan of one invocation, the demo defaults."""
