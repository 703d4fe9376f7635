"""The explorer: a local web page to watch a run and steer its trained generator.

``serve(session, host, port)`` runs the page's server (Flask on Werkzeug's threaded server,
bound to 127.0.0.1 unless told otherwise) until Ctrl-C; ``start`` runs it in a background thread
(tests, notebooks). ``Session`` computes what the page shows from what ``Loaders`` hand it;
``gankit.api.explore`` builds both for a run folder.
"""

from .server import Server, check_host, serve, start
from .session import Loaders, Pick, Session

__all__ = ["Loaders", "Pick", "Server", "Session", "check_host", "serve", "start"]
