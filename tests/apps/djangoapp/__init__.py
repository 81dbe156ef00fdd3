"""A small Django project for the end-to-end WSGI tests (settings, urls, views and wsgi in one package)."""
