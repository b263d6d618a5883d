"""The compute cluster as the platform sees it: workers, their devices and heartbeats."""
