"""Going live safely: the read-only pre-flight check (`supervisor.py check`) and the canary run (`run --canary`)."""
