"""A TCP endpoint for one VM's interactive serial console.

nova-serialproxy turns a user's websocket into a plain TCP connection to
the ``host:port`` the driver's ``get_serial_console`` answered; on Hyper-V
nothing listens there (a VM's COM port is a named pipe, not a socket), so
the driver listens itself, one :class:`SerialProxy` per running VM (nova 28
``serialproxy.SerialProxy``, compute-hyperv 16 the same).

The proxy talks to the VM only through two queues and an event, which
os-win's ``NamedPipeHandler`` of the VM's read-write COM port pipe shares
(``input_queue``/``output_queue``/``connect_event``): what the client sends
goes to ``to_vm``, what the guest prints comes from ``from_vm``, and
``client_connected`` is set while a client is attached.  The queues are
os-win's ``IOQueue``: their ``get`` and ``put`` give up once
``client_connected`` is cleared, which is how the pipe handler's writer
and this proxy's workers end.

Threads: native ones (nova 34 runs in threading mode; os-win's pipe
handlers block their thread in kernel32 calls).  One thread accepts
clients, one client at a time; each client gets a reader and a writer.
"""

import socket
import threading

from nova import exception
from nova.i18n import _
from oslo_log import log as logging

from compute_hyperv_ovs.hyperv import constants

LOG = logging.getLogger(__name__)

# Seconds a blocked accept() or recv() waits before it looks whether the
# proxy was stopped.
_POLL_INTERVAL = 0.5
# Seconds stop() waits for the proxy's threads.
_STOP_TIMEOUT = 5


class SerialProxy(object):
    """Joins TCP clients on ``address:port`` to one VM's COM port queues.

    :param instance_name: the VM's name (for logs and errors).
    :param address: the address to listen on (``[serial_console]
        proxyclient_address``).
    :param port: the TCP port (from ``nova.console.serial.acquire_port``).
    :param to_vm: queue (os-win ``IOQueue``) of bytes for the guest.
    :param from_vm: queue (os-win ``IOQueue``) of bytes the guest printed.
    :param client_connected: ``threading.Event`` set while a client is
        attached.
    """

    def __init__(self, instance_name, address, port, to_vm, from_vm,
                 client_connected):
        self.instance_name = instance_name
        self.address = address
        self.port = port
        self._to_vm = to_vm
        self._from_vm = from_vm
        self._client_connected = client_connected
        self._stopped = threading.Event()
        self._listener = None
        self._client = None
        self._client_lock = threading.Lock()
        self._thread = None

    def start(self):
        """Listen now, then accept clients in a thread of its own.

        The socket is bound before this returns, so the port that
        ``get_serial_console`` reports is already open.

        :raises nova.exception.NovaException: the address or port cannot
            be listened on (naming both, and the options that set them).
        """
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.address, self.port))
            listener.listen(1)
            listener.settimeout(_POLL_INTERVAL)
        except OSError as exc:
            listener.close()
            raise exception.NovaException(_(
                'The serial console of VM %(vm)s cannot listen on '
                '%(addr)s:%(port)s: %(error)s. Check [serial_console] '
                'proxyclient_address (an address of this host) and '
                'port_range.') % {'vm': self.instance_name,
                                  'addr': self.address, 'port': self.port,
                                  'error': exc})
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept_clients, daemon=True,
            name='serial proxy %s' % self.instance_name)
        self._thread.start()
        LOG.info('Serial console of VM %(vm)s listening on %(addr)s:'
                 '%(port)s', {'vm': self.instance_name,
                              'addr': self.address, 'port': self.port})

    def stop(self):
        """Drop the client, close the port and wait for the threads.

        ``client_connected`` is cleared first, so that the queues' users
        (this proxy's workers, the pipe handler's writer) give up.
        """
        self._stopped.set()
        self._client_connected.clear()
        with self._client_lock:
            if self._client is not None:
                try:
                    self._client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # the client is gone already
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                LOG.warning('The serial console proxy of VM %s did not '
                            'stop within %d s', self.instance_name,
                            _STOP_TIMEOUT)
        if self._listener is not None:
            self._listener.close()

    def _accept_clients(self):
        while not self._stopped.is_set():
            try:
                client, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if not self._stopped.is_set():
                    LOG.error('The serial console of VM %(vm)s stops '
                              'accepting clients: %(error)s',
                              {'vm': self.instance_name, 'error': exc})
                return
            LOG.debug('Serial console client %(peer)s attached to VM '
                      '%(vm)s', {'peer': peer, 'vm': self.instance_name})
            self._serve(client)

    def _serve(self, client):
        """One client, until it leaves or the proxy stops."""
        client.settimeout(_POLL_INTERVAL)
        with self._client_lock:
            if self._stopped.is_set():
                client.close()
                return
            self._client = client
            self._client_connected.set()
        workers = [threading.Thread(target=job, args=(client,), daemon=True,
                                    name='serial proxy %s %s' % (
                                        self.instance_name, job.__name__))
                   for job in (self._client_to_vm, self._vm_to_client)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        with self._client_lock:
            self._client = None
        client.close()

    def _client_to_vm(self, client):
        try:
            while self._client_connected.is_set():
                try:
                    data = client.recv(constants.SERIAL_CONSOLE_BUFFER_SIZE)
                except socket.timeout:
                    continue
                if not data:
                    break  # the client closed its side
                self._to_vm.put(data)
        except OSError as exc:
            LOG.debug('Serial console client of VM %(vm)s: %(error)s',
                      {'vm': self.instance_name, 'error': exc})
        finally:
            self._client_connected.clear()

    def _vm_to_client(self, client):
        try:
            while self._client_connected.is_set():
                data = self._from_vm.get_burst(timeout=_POLL_INTERVAL)
                if data:
                    client.sendall(data)
        except OSError as exc:
            LOG.debug('Serial console client of VM %(vm)s: %(error)s',
                      {'vm': self.instance_name, 'error': exc})
        finally:
            self._client_connected.clear()
