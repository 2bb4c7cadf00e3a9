"""Generated datasets that need no download: Matterport's shapes (the main job) and the
synthetic road and smoke scenes used by tests and the samples' smoke checks.

May import: kseg.config, kseg.data core modules and kseg.data.formats (never kseg.models,
kseg.cli or anything above).
"""
