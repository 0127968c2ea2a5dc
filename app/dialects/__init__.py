"""Platform dialects: each parses its platform's request and renders neutral steps."""
