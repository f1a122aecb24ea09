"""I/O at the edges: files written whole or not at all (`files`). Transforms never import it."""
