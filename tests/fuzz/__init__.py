"""Generated hostile input against every route and every CLI command (hypothesis)."""
