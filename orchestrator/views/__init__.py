"""The module graph drawn: text, Mermaid, DOT, JSON, HTML."""
