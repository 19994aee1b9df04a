"""The web console's shared pieces: templates, static files, CSRF, login redirects, error
pages and SVG charts. The pages themselves live in each domain's ``views.py``."""
