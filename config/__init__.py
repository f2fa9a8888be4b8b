"""Default rules and profiles shipped with casebot (installed as the package `casebot._config`)."""
