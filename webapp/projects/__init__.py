"""Projects and the one permission check that guards every read and write."""
