"""Serve one WSGI application on a loopback address, a thread per request.

keystone 24 and placement 10 ship only WSGI applications (devstack runs
them under uWSGI or Apache).  The all-in-one cloud needs no web server for
them: Python's wsgiref with a thread per request is enough for one user.

Usage: wsgi_serve.py HOST PORT MODULE:FACTORY
  FACTORY() returns the WSGI application (e.g.
  keystone.server.wsgi:initialize_public_application).
"""

import importlib
import socketserver
import sys
import time
from wsgiref import simple_server


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write('%s %s\n' % (time.strftime('%H:%M:%S'), fmt % args))

    def address_string(self):
        return self.client_address[0]


def main(argv):
    host, port, target = argv[1], int(argv[2]), argv[3]
    module, factory = target.split(':')
    # The factories parse sys.argv as their own command line (oslo.config).
    sys.argv = sys.argv[:1]
    application = getattr(importlib.import_module(module), factory)()
    server = simple_server.make_server(host, port, application,
                                       server_class=_Server,
                                       handler_class=_Handler)
    sys.stderr.write('serving %s on http://%s:%d/\n' % (target, host, port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == '__main__':
    main(sys.argv)
