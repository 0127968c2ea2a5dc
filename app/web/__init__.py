"""Web plumbing every blueprint relies on: CSRF, error pages, security headers,
request limits and the health probes."""
