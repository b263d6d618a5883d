"""WSGI entry point for gunicorn: `gunicorn webapp.wsgi:application`.

The URL configuration (and every view module it imports: ~1.2 s on 2 cores) is loaded here, as a worker
starts, rather than by its first request, so the first answer after a restart costs what any other does.
"""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 -- imports the URL configuration now
